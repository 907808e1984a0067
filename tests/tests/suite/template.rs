//! template.yaml against the code: the tables, indexes, TTL attributes and queues the code
//! creates with `migrate` are the ones the stack deploys.

use gatehouse_tests::template::{load, schema_mismatches};
use serde_yaml::Value;

fn table_props<'a>(t: &'a mut Value, resource: &str) -> &'a mut Value {
    t.get_mut("Resources").and_then(|r| r.get_mut(resource)).and_then(|r| r.get_mut("Properties")).expect(resource)
}

#[test]
fn the_template_declares_exactly_the_codes_tables_and_queues() {
    let problems = schema_mismatches(&load());
    assert!(problems.is_empty(), "template.yaml disagrees with shared/src/schema.rs:\n{}", problems.join("\n"));
}

#[test]
fn removing_a_table_from_the_template_is_caught() {
    let mut t = load();
    t.get_mut("Resources").and_then(Value::as_mapping_mut).unwrap().remove("CacheLocksTable");
    let problems = schema_mismatches(&t);
    assert!(
        problems.iter().any(|p| p.contains("cache_locks: in the code's schema but not in template.yaml")),
        "{problems:?}"
    );
}

/// What the schema check finds in the template with `property` of `resource` removed.
fn problems_without(resource: &str, property: &str) -> Vec<String> {
    let mut t = load();
    table_props(&mut t, resource).as_mapping_mut().unwrap().remove(property);
    schema_mismatches(&t)
}

#[test]
fn removing_an_index_from_the_template_is_caught() {
    let problems = problems_without("SessionsTable", "GlobalSecondaryIndexes");
    assert!(problems.iter().any(|p| p.starts_with("sessions: GlobalSecondaryIndexes")), "{problems:?}");
}

#[test]
fn removing_a_ttl_attribute_from_the_template_is_caught() {
    let problems = problems_without("CacheTable", "TimeToLiveSpecification");
    assert!(problems.iter().any(|p| p.starts_with("cache: TTL attribute")), "{problems:?}");
}

#[test]
fn a_changed_key_or_visibility_timeout_is_caught() {
    let mut t = load();
    let users = table_props(&mut t, "UsersTable");
    users["KeySchema"][0]["AttributeName"] = Value::from("id");
    table_props(&mut t, "JobsQueue")["VisibilityTimeout"] = Value::from(30);
    let problems = schema_mismatches(&t);
    assert!(problems.iter().any(|p| p.starts_with("users: KeySchema")), "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("VisibilityTimeout")), "{problems:?}");
}

#[test]
fn an_extra_table_in_the_template_is_caught() {
    let mut t = load();
    let copy = t["Resources"]["CacheTable"].clone();
    let mut copy = copy;
    if let Value::Tagged(tag) = &mut copy["Properties"]["TableName"] {
        tag.value = Value::from("${AWS::StackName}-orphans");
    }
    t["Resources"].as_mapping_mut().unwrap().insert(Value::from("OrphansTable"), copy);
    let problems = schema_mismatches(&t);
    assert!(
        problems.iter().any(|p| p.contains("orphans: in template.yaml but not in the code's schema")),
        "{problems:?}"
    );
}

use gatehouse_tests::template::{authorized_routes, of_type, permission_mismatches, routes};
use std::collections::BTreeSet;

/// What one function's code does to AWS: `(resource, actions)`.
type Permissions = &'static [(&'static str, &'static [&'static str])];

fn functions() -> Vec<(&'static str, Permissions)> {
    vec![
        ("login", gatehouse_login::PERMISSIONS),
        ("tokens", gatehouse_tokens::PERMISSIONS),
        ("token-check", gatehouse_token_check::PERMISSIONS),
        ("password-reset", gatehouse_password_reset::PERMISSIONS),
        ("job-worker", gatehouse_job_worker::PERMISSIONS),
        ("oauth", gatehouse_oauth::PERMISSIONS),
        // The pages call the three HTTP functions' route tables in process.
        ("pages", Box::leak(gatehouse_pages::permissions().into_boxed_slice())),
    ]
}

/// The routes of openapi.json whose operation `keep` keeps, local-only ones left out.
fn openapi_routes_where(keep: impl Fn(&serde_json::Value) -> bool) -> BTreeSet<(String, String)> {
    let doc: serde_json::Value =
        serde_json::from_str(include_str!("../../../openapi.json")).expect("openapi.json is JSON");
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if keep(op) && op.get("x-gatehouse-local-only") != Some(&serde_json::Value::Bool(true)) {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

fn openapi_routes() -> BTreeSet<(String, String)> {
    openapi_routes_where(|_| true)
}

/// Routes openapi.json documents as asking for no credential of the API (no `bearerAuth`, no
/// `cookieAuth`: public, or the OAuth endpoints' own client authentication or access token),
/// local-only ones left out.
fn openapi_public_routes() -> BTreeSet<(String, String)> {
    openapi_routes_where(|op| {
        op["security"].as_array().is_some_and(|alternatives| {
            alternatives.iter().all(|a| a.get("bearerAuth").is_none() && a.get("cookieAuth").is_none())
        })
    })
}

/// Routes the functions' route tables mark public.
fn table_public_routes() -> BTreeSet<(String, String)> {
    [gatehouse_login::ROUTES, gatehouse_tokens::ROUTES, gatehouse_password_reset::ROUTES, gatehouse_oauth::ROUTES]
        .into_iter()
        .flatten()
        .filter(|r| r.public())
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect()
}

#[test]
fn the_route_tables_and_the_document_mark_the_same_routes_public() {
    assert_eq!(table_public_routes(), openapi_public_routes(), "the route tables vs openapi.json");
}

/// The functions check the credential, the route's abilities and its requirements themselves:
/// an authorizer in front of gatehouse's routes would double the invocations and the reads, and
/// answer API Gateway's bare 401/403 instead of the API's error JSON. It stays the API's default,
/// so a route the team adds to the same API is behind it unless it says otherwise (fail closed).
#[test]
fn no_route_of_gatehouse_sits_behind_the_authorizer_which_guards_every_other_route_by_default() {
    let t = load();
    assert_eq!(authorized_routes(&t), BTreeSet::new());
    let auth = &t["Resources"]["HttpApi"]["Properties"]["Auth"];
    assert_eq!(auth["DefaultAuthorizer"].as_str(), Some("GatehouseAuthorizer"));
    assert!(auth["Authorizers"]["GatehouseAuthorizer"].get("FunctionArn").is_some(), "GatehouseAuthorizer is defined");
}

#[test]
fn an_authorizer_put_back_in_front_of_a_route_is_caught() {
    let mut t = load();
    let events = |t: &mut Value| t["Resources"]["LoginFunction"]["Properties"]["Events"].clone();
    t["Resources"]["LoginFunction"]["Properties"]["Events"]["User"]["Properties"]["Auth"] =
        serde_yaml::from_str("{ Authorizer: GatehouseAuthorizer }").unwrap();
    assert_eq!(authorized_routes(&t), BTreeSet::from([("GET".to_owned(), "/user".to_owned())]));
    let mut t = load();
    let mut e = events(&mut t);
    e["Logout"]["Properties"].as_mapping_mut().unwrap().remove("Auth");
    t["Resources"]["LoginFunction"]["Properties"]["Events"] = e;
    assert_eq!(
        authorized_routes(&t),
        BTreeSet::from([("POST".to_owned(), "/logout".to_owned())]),
        "the default applies"
    );
}

fn code_routes() -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for (binary, routes) in [
        ("login", gatehouse_login::ROUTES),
        ("tokens", gatehouse_tokens::ROUTES),
        ("password-reset", gatehouse_password_reset::ROUTES),
        ("pages", gatehouse_pages::ROUTES),
        ("oauth", gatehouse_oauth::ROUTES),
    ] {
        for r in routes {
            out.insert((binary.to_owned(), r.method.to_owned(), r.path.to_owned()));
        }
    }
    out
}

#[test]
fn every_route_in_the_template_is_in_the_openapi_document_and_served_by_that_function() {
    let template_routes = routes(&load());
    // The hosted pages are HTML, not the JSON API the document describes.
    let by_path: BTreeSet<(String, String)> =
        template_routes.iter().filter(|(f, _, _)| f != "pages").map(|(_, m, p)| (m.clone(), p.clone())).collect();
    assert_eq!(by_path, openapi_routes(), "template.yaml routes vs openapi.json");
    assert_eq!(template_routes, code_routes(), "template.yaml routes vs each function's ROUTES");
}

#[test]
fn a_route_removed_from_the_template_only_is_caught() {
    let mut t = load();
    t["Resources"]["LoginFunction"]["Properties"]["Events"].as_mapping_mut().unwrap().remove("Sessions");
    let by_path: BTreeSet<(String, String)> = routes(&t).into_iter().map(|(_, m, p)| (m, p)).collect();
    assert_ne!(by_path, openapi_routes());
    assert!(openapi_routes().difference(&by_path).any(|(m, p)| m == "GET" && p == "/sessions"));
}

#[test]
fn every_function_is_granted_exactly_what_its_code_uses() {
    let t = load();
    let problems: Vec<String> =
        functions().into_iter().flat_map(|(b, needs)| permission_mismatches(&t, b, needs)).collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_permission_removed_from_the_template_only_is_caught() {
    let mut t = load();
    let stmts =
        t["Resources"]["JobWorkerFunction"]["Properties"]["Policies"][0]["Statement"].as_sequence_mut().unwrap();
    stmts.retain(|s| s["Action"][0].as_str() != Some("ses:SendEmail"));
    let problems = permission_mismatches(&t, "job-worker", gatehouse_job_worker::PERMISSIONS);
    assert!(problems.iter().any(|p| p.contains("does not grant ses:SendEmail on ses")), "{problems:?}");
}

#[test]
fn a_wildcard_grant_is_caught() {
    let mut t = load();
    t["Resources"]["LoginFunction"]["Properties"]["Policies"][0]["Statement"][0]["Action"] =
        Value::from(vec!["dynamodb:*"]);
    let problems = permission_mismatches(&t, "login", gatehouse_login::PERMISSIONS);
    assert!(problems.iter().any(|p| p.contains("over-broad")), "{problems:?}");
}

#[test]
fn the_queue_hides_a_message_for_at_least_six_worker_timeouts() {
    let t = load();
    let worker_timeout = t["Resources"]["JobWorkerFunction"]["Properties"]["Timeout"].as_u64().unwrap();
    let visibility = t["Resources"]["JobsQueue"]["Properties"]["VisibilityTimeout"].as_u64().unwrap();
    assert!(visibility >= 6 * worker_timeout, "{visibility} < 6 x {worker_timeout}");
    assert_eq!(worker_timeout, u64::from(gatehouse::schema::WORKER_TIMEOUT_SECS));
    let sqs_events =
        t["Resources"]["JobWorkerFunction"]["Properties"]["Events"]["Jobs"]["Properties"]["FunctionResponseTypes"]
            .clone();
    assert_eq!(sqs_events, Value::from(vec!["ReportBatchItemFailures"]));
}

#[test]
fn every_function_builds_with_cargo_lambda_on_al2023() {
    let t = load();
    let fns = of_type(&t, "AWS::Serverless::Function");
    assert_eq!(fns.len(), 7);
    for (name, f) in fns {
        assert_eq!(f["Metadata"]["BuildMethod"].as_str(), Some("rust-cargolambda"), "{name}");
    }
    assert_eq!(t["Globals"]["Function"]["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(t["Globals"]["Function"]["Handler"].as_str(), Some("bootstrap"));
}

// ------------------------------------------------------------------------------------------------
// Safe production defaults: logs that expire, access logs, throttling, reserved concurrency, and
// no placeholder reset link.

/// `!Ref X` → `X`.
fn ref_of(v: &Value) -> Option<&str> {
    match v {
        Value::Tagged(t) if t.tag == "Ref" => t.value.as_str(),
        _ => None,
    }
}

fn parameter<'a>(t: &'a Value, name: &str) -> &'a Value {
    t["Parameters"].get(name).unwrap_or_else(|| panic!("parameter {name}"))
}

/// The log group resource `LogGroup: !Ref X` (or `DestinationArn: !GetAtt X.Arn`) names, checked to
/// keep its logs `LogRetentionDays`.
fn assert_retained(t: &Value, group: &str, whose: &str) {
    let g = &t["Resources"][group];
    assert_eq!(g["Type"].as_str(), Some("AWS::Logs::LogGroup"), "{whose}: {group} is not a log group");
    assert_eq!(ref_of(&g["Properties"]["RetentionInDays"]), Some("LogRetentionDays"), "{whose}: {group}");
}

#[test]
fn every_function_logs_to_its_own_group_with_a_retention() {
    let t = load();
    let days = parameter(&t, "LogRetentionDays");
    assert_eq!(days["Default"].as_u64(), Some(30));
    let mut groups = BTreeSet::new();
    for (name, f) in of_type(&t, "AWS::Serverless::Function") {
        let group = ref_of(&f["Properties"]["LoggingConfig"]["LogGroup"])
            .unwrap_or_else(|| panic!("{name}: LoggingConfig.LogGroup must be !Ref a log group"));
        assert_retained(&t, group, &name);
        assert!(groups.insert(group.to_owned()), "{name} shares {group} with another function");
    }
    assert_eq!(groups.len(), 7);
}

#[test]
fn the_http_api_writes_json_access_logs_to_a_retained_group() {
    let t = load();
    let settings = &t["Resources"]["HttpApi"]["Properties"]["AccessLogSettings"];
    let Value::Tagged(dest) = &settings["DestinationArn"] else { panic!("DestinationArn must be !GetAtt <group>.Arn") };
    assert_eq!(dest.tag, "GetAtt");
    let group = dest.value.as_str().and_then(|s| s.strip_suffix(".Arn")).expect("<group>.Arn");
    assert_retained(&t, group, "HttpApi access logs");
    let format: serde_json::Value =
        serde_json::from_str(settings["Format"].as_str().expect("a Format")).expect("the access log format is JSON");
    for (key, variable) in [
        ("requestId", "$context.requestId"),
        ("ip", "$context.identity.sourceIp"),
        ("routeKey", "$context.routeKey"),
        ("status", "$context.status"),
        ("responseLatency", "$context.responseLatency"),
    ] {
        assert_eq!(format[key], variable, "access log field {key}");
    }
    let text = settings["Format"].as_str().unwrap();
    assert!(!text.contains("header") && !text.contains("cookie"), "no credentials in access logs: {text}");
}

#[test]
fn every_route_is_throttled_by_api_gateway() {
    let t = load();
    let defaults = &t["Resources"]["HttpApi"]["Properties"]["DefaultRouteSettings"];
    for (setting, param) in
        [("ThrottlingRateLimit", "ApiThrottlingRateLimit"), ("ThrottlingBurstLimit", "ApiThrottlingBurstLimit")]
    {
        assert_eq!(ref_of(&defaults[setting]), Some(param), "{setting}");
        assert!(parameter(&t, param)["Default"].as_u64().is_some_and(|v| v > 0), "{param} needs a positive default");
    }
}

#[test]
fn the_password_hashing_functions_have_reserved_concurrency() {
    let t = load();
    assert_eq!(parameter(&t, "LoginReservedConcurrency")["Type"].as_str(), Some("Number"));
    for (name, f) in of_type(&t, "AWS::Serverless::Function") {
        let binary = f["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap_or("?");
        let reserved = &f["Properties"]["ReservedConcurrentExecutions"];
        // The pages hash passwords too (sign in, register, reset, through the same route tables).
        if ["login", "tokens", "password-reset", "pages"].contains(&binary) {
            // `!If [ReserveLoginConcurrency, !Ref LoginReservedConcurrency, !Ref AWS::NoValue]`: 0 = unreserved.
            let Value::Tagged(cond) = reserved else { panic!("{name}: ReservedConcurrentExecutions missing") };
            assert_eq!(cond.tag, "If", "{name}");
            let args = cond.value.as_sequence().expect("!If [cond, then, else]");
            assert_eq!(args[0].as_str(), Some("ReserveLoginConcurrency"), "{name}");
            assert_eq!(ref_of(&args[1]), Some("LoginReservedConcurrency"), "{name}");
            assert_eq!(ref_of(&args[2]), Some("AWS::NoValue"), "{name}");
        } else {
            assert!(reserved.is_null(), "{name}: only the login-class functions are capped");
        }
    }
    assert!(matches!(t["Conditions"]["ReserveLoginConcurrency"], Value::Tagged(_)), "the condition exists");
}

#[test]
fn the_reset_url_has_no_default_and_reaches_every_function() {
    let t = load();
    let reset_url = parameter(&t, "ResetUrl");
    assert!(reset_url.get("Default").is_none(), "ResetUrl must be given at deploy time");
    // The code refuses to start on Lambda without these (shared/src/config.rs).
    let vars = &t["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(ref_of(&vars["GATEHOUSE_RESET_URL"]), Some("ResetUrl"));
    assert!(parameter(&t, "VerifyUrl").get("Default").is_none(), "VerifyUrl must be given at deploy time");
    assert_eq!(ref_of(&vars["GATEHOUSE_VERIFY_URL"]), Some("VerifyUrl"));
    assert!(parameter(&t, "EmailChangeUrl").get("Default").is_none(), "EmailChangeUrl must be given at deploy time");
    assert_eq!(ref_of(&vars["GATEHOUSE_EMAIL_CHANGE_URL"]), Some("EmailChangeUrl"));
    // Every function judges routes' requirements from the same table as the authorizer.
    assert_eq!(ref_of(&vars["GATEHOUSE_ROUTE_ABILITIES"]), Some("RouteAbilities"));
    assert_eq!(vars["GATEHOUSE_MAILER"].as_str(), Some("ses"), "the log mailer is refused on Lambda");
    assert!(matches!(vars["GATEHOUSE_ALLOWED_ORIGINS"], Value::Tagged(_)), "the CSRF check trusts the CORS origins");
    for (name, f) in of_type(&t, "AWS::Serverless::Function") {
        let own = &f["Properties"]["Environment"]["Variables"];
        let required = ["GATEHOUSE_RESET_URL", "GATEHOUSE_VERIFY_URL", "GATEHOUSE_EMAIL_CHANGE_URL"];
        for var in
            required.into_iter().chain(["GATEHOUSE_MAILER", "GATEHOUSE_ROUTE_ABILITIES", "AWS_LAMBDA_FUNCTION_NAME"])
        {
            assert!(own.get(var).is_none(), "{name} overrides {var}");
        }
    }
}

/// An AWS call gives up (attempt and operation timeouts) before Lambda ends the invocation, so a
/// stalled dependency is answered 503 `unavailable`, not a killed function; a function that sets
/// a shorter timeout of its own (the authorizer, 5 s) still fits one whole attempt.
#[test]
fn aws_calls_time_out_before_the_functions_do() {
    let template = load();
    let global = template["Globals"]["Function"]["Timeout"].as_u64().expect("Globals.Function.Timeout");
    let (connect, attempt, operation) = gatehouse_aws::TIMEOUTS;
    assert!(operation.as_secs() < global, "operation timeout {operation:?} under the functions' {global} s");
    assert!(attempt <= operation && connect <= operation);
    for (name, function) in of_type(&template, "AWS::Serverless::Function") {
        if let Some(own) = function["Properties"]["Timeout"].as_u64() {
            assert!(own > attempt.as_secs(), "{name}: {own} s leaves no room for one {attempt:?} attempt");
        }
    }
}

/// A security notice is queued before its change and looks for the change's mark when it runs,
/// `GATEHOUSE_NOTICE_DELAY_SECONDS` later (30 by default): every function that makes such a
/// change (all but the job worker, which changes no credentials) must end before that, or a
/// change landing at the very end of an invocation could be looked for too early and never
/// announced.
#[test]
fn every_request_ends_before_its_notices_look_for_its_change() {
    let template = load();
    let global = template["Globals"]["Function"]["Timeout"].as_u64().expect("Globals.Function.Timeout");
    let delay = gatehouse::config::NOTICE_DELAY.as_secs();
    for (name, function) in of_type(&template, "AWS::Serverless::Function") {
        if name == "JobWorkerFunction" {
            continue;
        }
        let timeout = function["Properties"]["Timeout"].as_u64().unwrap_or(global);
        assert!(timeout < delay, "{name}: a {timeout} s invocation outlives the notices' {delay} s delay");
    }
    // And the configuration's default is that delay.
    let config = gatehouse_tests::http::config(&[]);
    assert_eq!(config.notice_delay, gatehouse::config::NOTICE_DELAY);
}
