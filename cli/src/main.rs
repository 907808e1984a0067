//! `gatehouse`: the operator's command, like Laravel's artisan.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use gatehouse::Config;
use gatehouse::dynamo::migrate;
use gatehouse::stores::{DynamoClient, SqsClient};

#[derive(Parser)]
#[command(name = "gatehouse", version, about = "Laravel's system tables on DynamoDB and SQS")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the tables and queues that are missing (idempotent); `migrate status` only reports.
    Migrate {
        #[command(subcommand)]
        action: Option<MigrateAction>,
    },
}

#[derive(Subcommand)]
enum MigrateAction {
    /// Show what exists, what is missing and what differs from the schema. Exits 1 unless all is in place.
    Status,
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let config = Config::from_env().context("configuration")?;
    match cli.command {
        Command::Migrate { action } => {
            let sdk = gatehouse::stores::aws_sdk_config().await;
            let db = DynamoClient::new(&sdk);
            let sqs = SqsClient::new(&sdk);
            match action {
                None => {
                    let report = migrate::migrate(&db, &sqs, &config.names).await.context("migrate")?;
                    for r in &report {
                        println!("{r}");
                    }
                    if migrate::changed_anything(&report) {
                        println!("migrate: done");
                    } else {
                        println!("migrate: nothing to do, everything is in place");
                    }
                }
                Some(MigrateAction::Status) => {
                    let report = migrate::status(&db, &sqs, &config.names).await.context("migrate status")?;
                    for r in &report {
                        println!("{r}");
                    }
                    if !migrate::all_ok(&report) {
                        println!("migrate status: not in place; run `gatehouse migrate`");
                        std::process::exit(1);
                    }
                    println!("migrate status: everything is in place");
                }
            }
        }
    }
    Ok(())
}
