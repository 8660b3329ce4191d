//! The `tracing` feature against the private server: span names and
//! fields, the statement text (and its truncation), errors, pool waits and
//! events, the caller's span carried to a `Client`'s cores; and that no
//! parameter value or password ever shows up in a recorded field.
//!
//! A separate test binary (`required-features = ["tracing"]`): it installs a
//! global subscriber that records every span and event. Each test runs under
//! a root span `test` with its own name, and reads back only what was
//! recorded under it.

use mysql_uring_testserver as support;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Mutex, Once};
use std::time::Duration;

use mysql_uring::{Client, ErrorKind, Opts, Pool, PoolOpts, Result};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::{LookupSpan, Registry};

/// A finished span (or, for events, the event) as recorded.
#[derive(Debug, Clone)]
struct Rec {
    name: String,
    target: String,
    level: String,
    fields: BTreeMap<String, String>,
    /// The `test` span it ran under (inherited from its parents).
    test: Option<String>,
    /// The name of its parent span.
    parent: Option<String>,
}

impl Rec {
    fn get(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(String::as_str)
    }

    fn field(&self, field: &str) -> &str {
        self.get(field)
            .unwrap_or_else(|| panic!("{} has no field {field}: {self:#?}", self.name))
    }
}

static SPANS: Mutex<Vec<Rec>> = Mutex::new(Vec::new());
static EVENTS: Mutex<Vec<Rec>> = Mutex::new(Vec::new());

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }
}

/// Records every span (when it closes) and every event.
struct Recorder;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let span = ctx.span(id).expect("a new span");
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let parent = span.parent();
        let test = if attrs.metadata().name() == "test" {
            fields.get("name").cloned()
        } else {
            parent
                .as_ref()
                .and_then(|p| p.extensions().get::<Rec>().and_then(|r| r.test.clone()))
        };
        let rec = Rec {
            name: attrs.metadata().name().to_string(),
            target: attrs.metadata().target().to_string(),
            level: attrs.metadata().level().to_string(),
            fields,
            test,
            parent: parent.map(|p| p.name().to_string()),
        };
        span.extensions_mut().insert(rec);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let span = ctx.span(id).expect("a recorded span");
        let mut ext = span.extensions_mut();
        if let Some(rec) = ext.get_mut::<Rec>() {
            values.record(&mut Fields(&mut rec.fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let span = ctx.event_span(event);
        let test = span
            .as_ref()
            .and_then(|s| s.extensions().get::<Rec>().and_then(|r| r.test.clone()));
        EVENTS.lock().unwrap().push(Rec {
            name: fields.get("message").cloned().unwrap_or_default(),
            target: event.metadata().target().to_string(),
            level: event.metadata().level().to_string(),
            fields,
            test,
            parent: span.map(|s| s.name().to_string()),
        });
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let span = ctx.span(&id).expect("a closing span");
        if let Some(rec) = span.extensions().get::<Rec>() {
            SPANS.lock().unwrap().push(rec.clone());
        }
    }
}

fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        tracing::subscriber::set_global_default(Registry::default().with(Recorder))
            .expect("no other global subscriber");
    });
}

/// Runs `f` on an io_uring runtime under a root span `test` named `name`.
fn run<F: Future<Output = Result<()>>>(name: &str, f: F) {
    install();
    let span = tracing::info_span!("test", name);
    let _entered = span.enter();
    if let Err(e) = mysql_uring::start(f) {
        panic!("test failed: {e}\n{e:?}");
    }
}

/// The spans recorded under test `name` (closed ones).
fn spans(name: &str) -> Vec<Rec> {
    SPANS
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.test.as_deref() == Some(name) && r.name != "test")
        .cloned()
        .collect()
}

fn events(name: &str) -> Vec<Rec> {
    EVENTS
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.test.as_deref() == Some(name))
        .cloned()
        .collect()
}

/// The one span named `span` whose statement is `sql`.
fn one(recs: &[Rec], span: &str, sql: &str) -> Rec {
    let found: Vec<&Rec> = recs
        .iter()
        .filter(|r| r.name == span && r.get("db.statement") == Some(sql))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "want one {span} span for {sql:?}, got {found:#?}\nall: {:#?}",
        recs.iter()
            .map(|r| (&r.name, r.get("db.statement")))
            .collect::<Vec<_>>()
    );
    found[0].clone()
}

/// No recorded field of any span or event anywhere contains `secret`.
fn never_recorded(secret: &str) {
    for r in SPANS
        .lock()
        .unwrap()
        .iter()
        .chain(EVENTS.lock().unwrap().iter())
    {
        for (k, v) in &r.fields {
            assert!(
                !v.contains(secret),
                "{secret:?} was recorded in {}.{k} = {v:?}",
                r.name
            );
        }
    }
}

fn opts() -> Opts {
    Opts::from_url(&support::test_url()).expect("test URL parses")
}

const SECRET: &str = "secret-param-123";

#[test]
fn commands_have_spans_with_statement_outcome_and_errors() {
    const T: &str = "commands";
    run(T, async {
        let mut c = mysql_uring::connect(opts()).await?;
        let rows = c.query("SELECT seq FROM seq_1_to_5").await?;
        assert_eq!(rows.len(), 5);
        c.query_drop(
            "CREATE TEMPORARY TABLE tr (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(64) UNIQUE)",
        )
        .await?;
        c.exec_drop("INSERT INTO tr (v) VALUES (?)", (SECRET,))
            .await?;
        let row = c
            .exec_first("SELECT id FROM tr WHERE v = ?", (SECRET,))
            .await?;
        assert!(row.is_some());
        // A duplicate key: the server's message quotes the value.
        let e = c
            .exec_drop("INSERT INTO tr (v) VALUES (?)", (SECRET,))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(1062));
        assert!(e.to_string().contains(SECRET), "{e}");
        let e = c.query("SELECT * FROM no_such_table_tr").await.unwrap_err();
        assert_eq!(e.code(), Some(1146));
        // Text-protocol parameters: the template is traced, not the values.
        let rows = c.query_with("SELECT ? AS x", (SECRET,)).await?;
        assert_eq!(rows[0].get::<&str>(0)?, SECRET);
        c.ping().await?;
        let stages = c.pipeline().query("SELECT 1").query("DO 2").run().await?;
        assert_eq!(stages.len(), 2);
        let done = c
            .execute_many("INSERT INTO tr (v) VALUES (?)", &[("a",), ("b",), ("c",)])
            .await?;
        assert_eq!(done.affected_rows, 3);
        let n: Vec<(u64,)> = c.query_as("SELECT seq FROM seq_1_to_3").await?;
        assert_eq!(n.len(), 3);
        // Streaming: the span covers the command up to its columns.
        c.cmd_query("SELECT seq FROM seq_1_to_2").await?;
        while c.next_row().await?.is_some() {}
        c.close().await
    });
    let s = spans(T);

    let connect = s
        .iter()
        .find(|r| r.name == "mysql.connect")
        .expect("a connect span");
    assert_eq!(connect.target, "mysql_uring::connect");
    assert_eq!(connect.field("db.user"), "root");
    assert_eq!(connect.field("db.system"), "mariadb");
    assert_eq!(connect.field("server.address"), opts().get_host());
    assert!(!connect.field("mysql.server_version").is_empty());
    assert!(connect.field("mysql.connection_id").parse::<u32>().is_ok());
    assert!(!connect.field("mysql.auth_plugin").is_empty());
    assert!(["true", "false"].contains(&connect.field("mysql.tls")));

    let q = one(&s, "mysql.query", "SELECT seq FROM seq_1_to_5");
    assert_eq!(q.target, "mysql_uring::command");
    assert_eq!(q.level, "INFO");
    assert_eq!(q.field("db.system"), "mariadb");
    assert_eq!(q.field("server.address"), opts().get_host());
    assert_eq!(q.field("server.port"), opts().get_port().to_string());
    assert_eq!(q.field("db.namespace"), "test");
    assert_eq!(q.field("otel.kind"), "client");
    assert_eq!(q.field("db.response.returned_rows"), "5");
    assert_eq!(
        q.field("mysql.connection_id"),
        connect.field("mysql.connection_id")
    );
    assert_eq!(q.get("otel.status_code"), None);

    let ins = s
        .iter()
        .filter(|r| r.name == "mysql.execute" && r.field("db.statement").starts_with("INSERT"))
        .collect::<Vec<_>>();
    assert_eq!(ins.len(), 2, "{ins:#?}");
    assert_eq!(ins[0].field("mysql.affected_rows"), "1");
    assert_eq!(ins[0].field("mysql.last_insert_id"), "1");
    // The first execute prepared the statement: a child span.
    let prep = one(&s, "mysql.prepare", "INSERT INTO tr (v) VALUES (?)");
    assert_eq!(prep.parent.as_deref(), Some("mysql.execute"));
    // The duplicate: code, SQLSTATE and kind; never the message.
    let dup = ins[1];
    assert_eq!(dup.field("db.response.status_code"), "1062");
    assert_eq!(dup.field("mysql.sqlstate"), "23000");
    assert_eq!(dup.field("error.type"), "Server");
    assert_eq!(dup.field("otel.status_code"), "ERROR");

    let first = one(&s, "mysql.execute", "SELECT id FROM tr WHERE v = ?");
    assert_eq!(first.field("db.response.returned_rows"), "1");

    let bad = one(&s, "mysql.query", "SELECT * FROM no_such_table_tr");
    assert_eq!(bad.field("db.response.status_code"), "1146");
    assert_eq!(bad.field("mysql.sqlstate"), "42S02");
    assert_eq!(bad.field("otel.status_code"), "ERROR");

    // query_with: one span, with the template.
    let with = one(&s, "mysql.query", "SELECT ? AS x");
    assert_eq!(with.field("db.response.returned_rows"), "1");

    let ping = s
        .iter()
        .find(|r| r.name == "mysql.ping")
        .expect("a ping span");
    assert_eq!(ping.get("db.statement"), None);

    let pipe = one(&s, "mysql.pipeline", "SELECT 1; DO 2");
    assert_eq!(pipe.field("db.operation.batch.size"), "2");
    assert_eq!(pipe.field("db.response.returned_rows"), "1");

    let many = one(&s, "mysql.execute_many", "INSERT INTO tr (v) VALUES (?)");
    assert_eq!(many.field("mysql.affected_rows"), "3");

    let typed = one(&s, "mysql.query", "SELECT seq FROM seq_1_to_3");
    assert_eq!(typed.field("db.response.returned_rows"), "3");
    one(&s, "mysql.query", "SELECT seq FROM seq_1_to_2");

    // A command made of commands is one span: none of mysql.query's parents
    // is another command span.
    for r in &s {
        if r.target == "mysql_uring::command" && r.name != "mysql.prepare" {
            assert_eq!(r.parent.as_deref(), Some("test"), "{r:#?}");
        }
    }
    never_recorded(SECRET);
}

#[test]
fn long_statements_are_truncated_on_a_char_boundary() {
    const T: &str = "long";
    // 'é' is two bytes: 12 + 2 * 300 bytes, cut at 256 would split one.
    let sql = format!("SELECT 1 /* {} */", "é".repeat(300));
    let s2 = sql.clone();
    run(T, async move {
        let mut c = mysql_uring::connect(opts()).await?;
        c.query_drop(&s2).await?;
        c.close().await
    });
    let s = spans(T);
    let q = s
        .iter()
        .find(|r| r.name == "mysql.query" && r.field("db.statement").starts_with("SELECT 1 /*"))
        .expect("the long query's span");
    let recorded = q.field("db.statement");
    assert!(recorded.len() <= 256, "{} bytes", recorded.len());
    assert!(recorded.len() >= 250, "{} bytes", recorded.len());
    assert!(sql.starts_with(recorded));
    assert!(recorded.len() < sql.len());
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "needs the private server's users (MYSQL_URL is set)"
)]
fn passwords_are_never_recorded() {
    const T: &str = "passwords";
    let server = support::server();
    let native = server.url(support::NATIVE_USER, support::NATIVE_PASSWORD, Some("test"));
    let wrong = server.url(support::NATIVE_USER, "wrong-secret-pw", Some("test"));
    run(T, async move {
        let mut c = mysql_uring::connect(native.as_str()).await?;
        c.query_drop("DO 1").await?;
        c.change_user(support::ED25519_USER, support::ED25519_PASSWORD, None)
            .await?;
        c.query_drop("DO 2").await?;
        c.close().await?;
        let e = mysql_uring::connect(wrong.as_str()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Auth);
        Ok(())
    });
    let s = spans(T);
    let connects: Vec<&Rec> = s.iter().filter(|r| r.name == "mysql.connect").collect();
    assert_eq!(connects.len(), 2, "{connects:#?}");
    assert_eq!(connects[0].field("db.user"), support::NATIVE_USER);
    assert_eq!(
        connects[0].field("mysql.auth_plugin"),
        "mysql_native_password"
    );
    assert_eq!(connects[1].field("otel.status_code"), "ERROR");
    assert_eq!(connects[1].field("error.type"), "Auth");
    assert_eq!(connects[1].field("db.response.status_code"), "1045");
    let cu = s
        .iter()
        .find(|r| r.name == "mysql.change_user")
        .expect("a change_user span");
    assert_eq!(cu.field("db.user"), support::ED25519_USER);
    assert_eq!(cu.get("otel.status_code"), None);
    let failed = events(T)
        .into_iter()
        .find(|e| e.name == "connecting failed")
        .expect("a connect failure event");
    assert_eq!(failed.level, "WARN");
    assert!(
        failed.field("error").contains("Access denied"),
        "{failed:#?}"
    );
    never_recorded(support::NATIVE_PASSWORD);
    never_recorded(support::ED25519_PASSWORD);
    never_recorded("wrong-secret-pw");
}

#[test]
fn pool_waits_and_connection_events_are_recorded() {
    const T: &str = "pool";
    run(T, async {
        let pool = Pool::new(
            opts(),
            PoolOpts {
                max: 1,
                wait_timeout: Some(Duration::from_millis(300)),
                idle_timeout: None,
                ..Default::default()
            },
        )?;
        let held = pool.get().await?;
        let p2 = pool.clone();
        let waiter = mysql_uring::runtime::spawn(async move {
            let mut c = p2.get().await?;
            c.query_drop("DO 1").await?;
            Ok::<_, mysql_uring::Error>(())
        });
        mysql_uring::runtime::sleep(Duration::from_millis(60)).await;
        drop(held);
        waiter.await.expect("the waiter ran")?;
        // All taken and never given back: the wait times out.
        let held = pool.get().await?;
        let e = pool.get().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout);
        let _ = held.detach();
        Ok(())
    });
    let s = spans(T);
    let waits: Vec<&Rec> = s.iter().filter(|r| r.name == "mysql.pool.wait").collect();
    assert_eq!(waits.len(), 2, "{waits:#?}");
    assert_eq!(waits[0].target, "mysql_uring::pool");
    let us: u64 = waits[0].field("mysql.pool.wait_us").parse().unwrap();
    assert!(us >= 40_000, "waited {us} µs");
    assert_eq!(waits[0].get("otel.status_code"), None);
    assert_eq!(waits[1].field("error.type"), "Timeout");
    let us: u64 = waits[1].field("mysql.pool.wait_us").parse().unwrap();
    assert!(us >= 250_000, "waited {us} µs");
    let ev = events(T);
    let names: Vec<&str> = ev.iter().map(|e| e.name.as_str()).collect();
    assert!(
        names.contains(&"waited for a pooled connection"),
        "{names:?}"
    );
    assert!(
        names.contains(&"gave up waiting for a pooled connection"),
        "{names:?}"
    );
    assert!(names.contains(&"pool opened a connection"), "{names:?}");
    assert!(
        names.contains(&"connection detached from its pool"),
        "{names:?}"
    );
}

#[test]
fn pool_closes_are_recorded_with_their_reason() {
    const T: &str = "pool_close";
    run(T, async {
        let pool = Pool::new(
            opts(),
            PoolOpts {
                max: 2,
                idle_timeout: Some(Duration::from_millis(50)),
                ..Default::default()
            },
        )?;
        drop(pool.get().await?);
        mysql_uring::runtime::sleep(Duration::from_millis(150)).await;
        // The idle connection is past its idle timeout: closed (by this get
        // or the background maintenance), and a new one opened.
        let mut c = pool.get().await?;
        // A connection that breaks is closed when it comes back.
        let id = c.connection_id();
        let mut killer = mysql_uring::connect(opts()).await?;
        killer.query_drop(&format!("KILL {id}")).await?;
        let _ = c.query_drop("DO 1").await;
        let _ = c.query_drop("DO 1").await;
        assert!(c.is_broken());
        drop(c);
        killer.close().await
    });
    let ev = events(T);
    let closed: Vec<&str> = ev
        .iter()
        .filter(|e| e.name == "pool closed a connection")
        .map(|e| e.field("reason"))
        .collect();
    assert!(closed.contains(&"idle_timeout"), "{closed:?} {ev:#?}");
    assert!(closed.contains(&"broken"), "{closed:?}");
}

#[test]
fn client_calls_run_under_the_callers_span() {
    const T: &str = "client";
    install();
    let client = Client::builder().cores(1).build(opts()).expect("a client");
    {
        let span = tracing::info_span!("test", name = T);
        let _entered = span.enter();
        let rows = client
            .blocking()
            .query("SELECT 'from the client'")
            .expect("the query");
        assert_eq!(rows.len(), 1);
    }
    let s = spans(T);
    let q = one(&s, "mysql.query", "SELECT 'from the client'");
    assert_eq!(q.field("db.response.returned_rows"), "1");
}
