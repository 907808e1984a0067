//! Every table, index, TTL attribute and queue, defined once. `migrate` creates from this,
//! `migrate status` compares against it, the DynamoDB adapters name their keys from it, and a test
//! checks that `template.yaml` declares the same.

/// DynamoDB key attribute types used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    S,
    N,
}

impl AttrType {
    pub fn as_str(self) -> &'static str {
        match self {
            AttrType::S => "S",
            AttrType::N => "N",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyAttr {
    pub name: &'static str,
    pub ty: AttrType,
}

const fn s(name: &'static str) -> KeyAttr {
    KeyAttr { name, ty: AttrType::S }
}
const fn n(name: &'static str) -> KeyAttr {
    KeyAttr { name, ty: AttrType::N }
}

/// A global secondary index (projection ALL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexDef {
    pub name: &'static str,
    pub partition: KeyAttr,
    pub sort: Option<KeyAttr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableDef {
    /// The table's name without the deployment's prefix (Laravel's table name).
    pub logical: &'static str,
    pub partition: KeyAttr,
    pub sort: Option<KeyAttr>,
    pub indexes: &'static [IndexDef],
    /// The TTL attribute (epoch seconds), for tables whose rows expire.
    pub ttl_attribute: Option<&'static str>,
}

/// The TTL attribute of every expiring table.
pub const TTL: &str = "expires_at";

pub const USERS: TableDef =
    TableDef { logical: "users", partition: s("pk"), sort: None, indexes: &[], ttl_attribute: None };
pub const SESSIONS: TableDef = TableDef {
    logical: "sessions",
    partition: s("id_hash"),
    sort: None,
    indexes: &[IndexDef { name: "by_user", partition: s("user_id"), sort: Some(n("last_activity")) }],
    ttl_attribute: Some(TTL),
};
pub const PASSWORD_RESET_TOKENS: TableDef = TableDef {
    logical: "password_reset_tokens",
    partition: s("email"),
    sort: None,
    indexes: &[],
    ttl_attribute: Some(TTL),
};
pub const PERSONAL_ACCESS_TOKENS: TableDef = TableDef {
    logical: "personal_access_tokens",
    partition: s("id"),
    sort: None,
    indexes: &[IndexDef { name: "by_tokenable", partition: s("tokenable"), sort: Some(s("id")) }],
    ttl_attribute: Some(TTL),
};
pub const CACHE: TableDef =
    TableDef { logical: "cache", partition: s("key"), sort: None, indexes: &[], ttl_attribute: Some(TTL) };
pub const CACHE_LOCKS: TableDef =
    TableDef { logical: "cache_locks", partition: s("key"), sort: None, indexes: &[], ttl_attribute: Some(TTL) };
pub const JOB_BATCHES: TableDef = TableDef {
    logical: "job_batches",
    partition: s("pk"),
    sort: Some(s("sk")),
    // Sparse: only batch items carry `list_pk` (added by migration 2, which backfills it).
    indexes: &[IndexDef { name: "by_created", partition: s("list_pk"), sort: Some(s("list_sk")) }],
    ttl_attribute: Some(TTL),
};
pub const FAILED_JOBS: TableDef = TableDef {
    logical: "failed_jobs",
    partition: s("uuid"),
    sort: None,
    indexes: &[IndexDef { name: "by_failed_at", partition: s("list_pk"), sort: Some(s("list_sk")) }],
    ttl_attribute: Some(TTL),
};
pub const CROSS_APP_HANDOFFS: TableDef = TableDef {
    logical: "cross_app_handoffs",
    partition: s("token_hash"),
    sort: None,
    indexes: &[],
    ttl_attribute: Some(TTL),
};
pub const CROSS_APP_SESSIONS: TableDef = TableDef {
    logical: "cross_app_sessions",
    partition: s("id"),
    sort: None,
    indexes: &[IndexDef { name: "by_user", partition: s("user_id"), sort: Some(n("created_at")) }],
    ttl_attribute: Some(TTL),
};
/// The register of every credential a user holds (see `credentials.rs`): a base table keyed by
/// user, so revocation reads it consistently instead of through a lagging index.
pub const CREDENTIALS: TableDef = TableDef {
    logical: "credentials",
    partition: s("user_id"),
    sort: Some(s("cred")),
    indexes: &[],
    ttl_attribute: Some(TTL),
};
/// Idempotency records of job runs (exactly-once effects over at-least-once delivery).
pub const JOB_RUNS: TableDef =
    TableDef { logical: "job_runs", partition: s("uuid"), sort: None, indexes: &[], ttl_attribute: Some(TTL) };
/// The OAuth clients (Passport's `oauth_clients`): kept until deleted, no TTL.
pub const OAUTH_CLIENTS: TableDef =
    TableDef { logical: "oauth_clients", partition: s("client_id"), sort: None, indexes: &[], ttl_attribute: None };
/// Authorization codes, by their hash; a spent code stays (marked) until it expires.
pub const OAUTH_AUTH_CODES: TableDef = TableDef {
    logical: "oauth_auth_codes",
    partition: s("code_hash"),
    sort: None,
    indexes: &[],
    ttl_attribute: Some(TTL),
};
/// Issued access tokens (JWTs), by `jti`, for introspection and revocation.
pub const OAUTH_ACCESS_TOKENS: TableDef = TableDef {
    logical: "oauth_access_tokens",
    partition: s("jti"),
    sort: None,
    indexes: &[],
    ttl_attribute: Some(TTL),
};
/// OAuth grants: one refresh-token family an item, until its absolute end.
pub const OAUTH_REFRESH_TOKENS: TableDef = TableDef {
    logical: "oauth_refresh_tokens",
    partition: s("family_id"),
    sort: None,
    indexes: &[],
    ttl_attribute: Some(TTL),
};
/// Consents, user × client: a base table keyed by user, listed with a consistent query.
pub const OAUTH_CONSENTS: TableDef = TableDef {
    logical: "oauth_consents",
    partition: s("user_id"),
    sort: Some(s("client_id")),
    indexes: &[],
    ttl_attribute: None,
};

/// The provider's keyring beyond the configured key (rotations), a few items, TTL once retired.
pub const OAUTH_SIGNING_KEYS: TableDef =
    TableDef { logical: "oauth_signing_keys", partition: s("kid"), sort: None, indexes: &[], ttl_attribute: Some(TTL) };

/// The tables of the OAuth 2.1 / OpenID Connect provider (migration 4 makes them on a deployment
/// migrated before them).
pub const OAUTH_TABLES: &[TableDef] =
    &[OAUTH_CLIENTS, OAUTH_AUTH_CODES, OAUTH_ACCESS_TOKENS, OAUTH_REFRESH_TOKENS, OAUTH_CONSENTS, OAUTH_SIGNING_KEYS];

/// Sign-in providers' accounts, (provider, subject) → user: keyed `<provider>#<subject>`, listed
/// per user through `by_user`; no TTL (an identity lives until unlinked). Migration 5 makes it on
/// a deployment migrated before it.
pub const IDENTITIES: TableDef = TableDef {
    logical: "identities",
    partition: s("pk"),
    sort: None,
    indexes: &[IndexDef { name: "by_user", partition: s("user_id"), sort: None }],
    ttl_attribute: None,
};

/// Where events are delivered (#32): keyed by `id` (`we_<uuidv7>`), listed whole by a scan (a
/// deployment has a few); no TTL. Migration 7 makes it on a deployment migrated before it.
pub const WEBHOOK_ENDPOINTS: TableDef =
    TableDef { logical: "webhook_endpoints", partition: s("id"), sort: None, indexes: &[], ttl_attribute: None };

/// Each user's events by number (#32): `user_id`, `seq` (zero-padded, so the string order is the
/// number order); TTL `expires_at` (`GATEHOUSE_EVENT_RETENTION_DAYS` after recording). Migration 6
/// makes it on a deployment migrated before it.
pub const EVENTS: TableDef = TableDef {
    logical: "events",
    partition: s("user_id"),
    sort: Some(s("seq")),
    indexes: &[],
    ttl_attribute: Some(TTL),
};

pub const TABLES: &[TableDef] = &[
    USERS,
    SESSIONS,
    PASSWORD_RESET_TOKENS,
    PERSONAL_ACCESS_TOKENS,
    CACHE,
    CACHE_LOCKS,
    JOB_BATCHES,
    FAILED_JOBS,
    CROSS_APP_HANDOFFS,
    CROSS_APP_SESSIONS,
    CREDENTIALS,
    JOB_RUNS,
    OAUTH_CLIENTS,
    OAUTH_AUTH_CODES,
    OAUTH_ACCESS_TOKENS,
    OAUTH_REFRESH_TOKENS,
    OAUTH_CONSENTS,
    OAUTH_SIGNING_KEYS,
    IDENTITIES,
    EVENTS,
    WEBHOOK_ENDPOINTS,
];

/// The jobs queue and its dead-letter queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueDef {
    pub logical: &'static str,
    pub dead_letter_logical: &'static str,
    /// ≥ 6 × the worker function's timeout, as AWS advises for SQS event sources.
    pub visibility_timeout_secs: u32,
    /// Deliveries before SQS moves a message to the DLQ: a backstop for messages that crash the
    /// worker; jobs normally end in failed_jobs well before this.
    pub max_receive_count: u32,
    pub retention_secs: u32,
    pub receive_wait_secs: u32,
}

/// The worker function's timeout, seconds (the template's `JobWorkerFunction.Timeout`).
pub const WORKER_TIMEOUT_SECS: u32 = 60;

pub const JOBS_QUEUE: QueueDef = QueueDef {
    logical: "jobs",
    dead_letter_logical: "jobs-dlq",
    visibility_timeout_secs: 6 * WORKER_TIMEOUT_SECS,
    max_receive_count: 25,
    retention_secs: 14 * 24 * 3600,
    receive_wait_secs: 20,
};

// A job is never run twice at once: SQS hides a message for longer than the worker can run.
const _: () = assert!(JOBS_QUEUE.visibility_timeout_secs >= 6 * WORKER_TIMEOUT_SECS);

/// The IAM action sets the functions' `PERMISSIONS` lists share; `template.yaml` grants each
/// function exactly its list (`suite::template`).
pub mod iam {
    /// A credential table as a handler uses it: one item by key (read, put, update, delete), and
    /// several read at once (a check reads the credential and its owner together).
    pub const ITEMS: &[&str] = &[
        "dynamodb:BatchGetItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
    ];
    /// [`ITEMS`], and deleting many at once (a revocation's batches).
    pub const ITEMS_AND_BATCH_DELETE: &[&str] = &[
        "dynamodb:BatchGetItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem",
    ];
    /// The cache table: counters, challenges, notes (read, put, update, delete one key).
    pub const CACHE: &[&str] = &["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"];
    /// An index, listed.
    pub const QUERY: &[&str] = &["dynamodb:Query"];
    /// [`ITEMS`], and checking an item in a transaction (the user item under a credential's issue).
    pub const ITEMS_AND_CHECK: &[&str] = &[
        "dynamodb:BatchGetItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:ConditionCheckItem",
    ];
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn table_names_are_unique() {
        let names: HashSet<_> = TABLES.iter().map(|t| t.logical).collect();
        assert_eq!(names.len(), TABLES.len());
    }

    #[test]
    fn key_attributes_have_one_type_per_table() {
        for t in TABLES {
            let mut seen = std::collections::HashMap::new();
            let keys = [Some(t.partition), t.sort]
                .into_iter()
                .flatten()
                .chain(t.indexes.iter().flat_map(|i| [Some(i.partition), i.sort]).flatten());
            for k in keys {
                assert_eq!(*seen.entry(k.name).or_insert(k.ty), k.ty, "{}.{}", t.logical, k.name);
            }
        }
    }
}
