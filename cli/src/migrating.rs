//! `gatehouse migrate`, `migrate rollback`, `migrate status`: the numbered migrations of
//! `gatehouse_aws::migrations` and what they made, checked against `gatehouse::schema`.

use crate::{MigrateAction, migrations, print_json};
use anyhow::{Context, Result};
use gatehouse::Config;
use gatehouse_aws::migrate;
use gatehouse_aws::{DynamoClient, SdkConfig, SqsClient};

/// Runs one `migrate` verb; exits 1 when what should be in place is not.
pub async fn run(sdk: &SdkConfig, config: &Config, action: Option<MigrateAction>) -> Result<()> {
    let (db, sqs) = (DynamoClient::new(sdk), SqsClient::new(sdk));
    let migrator = gatehouse_aws::migrations::Migrator::new(&db, &sqs, &config.names, migrations());
    match action {
        None | Some(MigrateAction::Up { .. }) => {
            let pretend = matches!(action, Some(MigrateAction::Up { pretend: true }));
            let lines = migrator.up(pretend).await.context("migrate")?;
            lines.iter().for_each(|l| println!("{l}"));
            if pretend {
            } else if lines.iter().any(|l| l.starts_with("ran ")) {
                println!("migrate: done");
            } else {
                let drift = migrator.drift().await.context("migrate")?;
                if !drift.is_empty() {
                    drift.iter().for_each(|d| println!("{d}"));
                    println!("migrate: every migration ran, but what they made is not in place (above)");
                    std::process::exit(1);
                }
                println!("migrate: nothing to do, everything is in place");
            }
        }
        Some(MigrateAction::Rollback { step, force, pretend }) => {
            let lines = migrator.rollback(step, force, pretend).await.context("migrate rollback")?;
            lines.iter().for_each(|l| println!("{l}"));
        }
        Some(MigrateAction::Status { json }) => {
            let ran = migrator.ran().await.context("migrate status")?;
            let report = migrate::status(&db, &sqs, &config.names).await.context("migrate status")?;
            let pending = migrator.migrations.iter().any(|m| !ran.iter().any(|r| r.id == m.id));
            let in_place = !pending && migrate::all_ok(&report);
            if json {
                let migrations: Vec<serde_json::Value> = migrator
                    .migrations
                    .iter()
                    .map(|m| {
                        let r = ran.iter().find(|r| r.id == m.id);
                        serde_json::json!({
                            "id": m.id,
                            "name": m.label(),
                            "state": if r.is_some() { "ran" } else { "pending" },
                            "batch": r.map(|r| r.batch),
                            "ran_at": r.map(|r| r.ran_at.clone()),
                        })
                    })
                    .collect();
                let resources: Vec<serde_json::Value> = report
                    .iter()
                    .map(|r| {
                        let ok = migrate::all_ok(std::slice::from_ref(r));
                        serde_json::json!({ "kind": r.kind, "name": r.name, "ok": ok, "report": r.to_string() })
                    })
                    .collect();
                let doc = serde_json::json!({ "migrations": migrations, "resources": resources, "in_place": in_place });
                print_json(&doc)?;
                if !in_place {
                    std::process::exit(1);
                }
                return Ok(());
            }
            for m in &migrator.migrations {
                match ran.iter().find(|r| r.id == m.id) {
                    Some(r) => println!("ran     batch {:<3} {:<24} {}", r.batch, m.label(), r.ran_at),
                    None => println!("PENDING           {}", m.label()),
                }
            }
            report.iter().for_each(|r| println!("{r}"));
            if !in_place {
                println!("migrate status: not in place; run `gatehouse migrate`");
                std::process::exit(1);
            }
            println!("migrate status: everything is in place");
        }
    }
    Ok(())
}
