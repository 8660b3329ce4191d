//! The benchmark database: its tables, filled once and reused, and what the
//! setup learns about the server.

use std::time::Instant;

use crate::BoxResult;

/// Rows in `bench_point`.
pub const POINT_ROWS: u64 = 10_000;
/// Rows inserted per statement when filling tables.
const FILL_CHUNK: u64 = 100_000;
/// Bump when the table definitions or contents change: tables are rebuilt.
const TABLE_VERSION: &str = "mysql-uring bench v1";

/// The point-select statement, with the id as a `?` parameter.
pub const POINT_SQL: &str = "SELECT id, name, price, qty FROM bench_point WHERE id = ?";

/// The point select with the id in the SQL text.
pub fn point_sql(id: u64) -> String {
    format!("SELECT id, name, price, qty FROM bench_point WHERE id = {id}")
}

/// The prepared decode workload's statement (`LIMIT ?` = the row count).
pub const DECODE_PREPARED_SQL: &str = "SELECT * FROM bench_decode LIMIT ?";

/// The decode workload's query.
pub fn decode_sql(rows: u64) -> String {
    format!("SELECT * FROM bench_decode LIMIT {rows}")
}

/// The seed's table for the tables workload.
pub fn create_table_sql(i: usize) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS bench_tables.table_{i} (
            dish_id INT(11) UNSIGNED AUTO_INCREMENT UNIQUE KEY,
            category TEXT, dish_name TEXT, price FLOAT, servings INT, order_time TIME)"
    )
}

/// Drops table `i` of the tables workload.
pub fn drop_table_sql(i: usize) -> String {
    format!("DROP TABLE IF EXISTS bench_tables.table_{i}")
}

/// The insert workload's table; emptied before every run.
pub const INSERT_DDL: &str = "CREATE TABLE IF NOT EXISTS bench_insert (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    k INT NOT NULL, name VARCHAR(32) NOT NULL, price DOUBLE NOT NULL) ENGINE=InnoDB";

/// The one-row prepared `INSERT` of the bulk workload.
pub const INSERT_ONE_SQL: &str = "INSERT INTO bench_insert (k, name, price) VALUES (?, ?, ?)";

/// `rows` parameter rows for [`INSERT_ONE_SQL`], the same values as [`insert_sql`].
pub fn insert_params(seed: u64, rows: usize) -> Vec<(i64, String, f64)> {
    (0..rows as u64)
        .map(|r| {
            let k = seed.wrapping_add(r) % 1_000_000;
            (k as i64, format!("name-{k}"), (k / 3) as f64 + 0.25)
        })
        .collect()
}

/// An `INSERT` of `rows` rows into `bench_insert` as SQL text, from `seed`.
pub fn insert_sql(seed: u64, rows: usize) -> String {
    let mut s = String::with_capacity(40 + rows * 32);
    s.push_str("INSERT INTO bench_insert (k, name, price) VALUES ");
    for r in 0..rows as u64 {
        if r > 0 {
            s.push(',');
        }
        let k = seed.wrapping_add(r) % 1_000_000;
        s.push_str(&format!("({k},'name-{k}',{}.25)", k / 3));
    }
    s
}

/// `url` with its database replaced by `bench`.
pub fn bench_url(url: &str) -> BoxResult<String> {
    let mut u = url::Url::parse(url)?;
    u.set_path("/bench");
    Ok(u.to_string())
}

/// The SQL producing `seq` from `a` to `b` as a derived table `g`.
fn seq_source(mariadb: bool, a: u64, b: u64) -> String {
    if mariadb {
        format!("seq_{a}_to_{b} AS g")
    } else {
        format!(
            "(WITH RECURSIVE s(seq) AS (SELECT {a} UNION ALL SELECT seq + 1 FROM s WHERE seq < {b}) \
             SELECT seq FROM s) AS g"
        )
    }
}

/// Creates `table` with `rows` rows unless a big enough one exists (told by
/// its comment). `ddl` has `{comment}` where the table comment goes; `select`
/// maps `g.seq` to a row and has `{source}` where the sequence goes.
async fn ensure_table(
    c: &mut mysql_uring::Connection,
    table: &str,
    ddl: &str,
    select: &str,
    rows: u64,
) -> mysql_uring::Result<()> {
    let have = c
        .query(&format!(
            "SELECT TABLE_COMMENT FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = 'bench' AND TABLE_NAME = '{table}'"
        ))
        .await?;
    if let Some(r) = have.first() {
        let comment: &str = r.get(0)?;
        let have_rows = comment
            .strip_prefix(TABLE_VERSION)
            .and_then(|s| s.trim().strip_prefix("rows="))
            .and_then(|s| s.parse::<u64>().ok());
        if have_rows.is_some_and(|n| n >= rows) {
            return Ok(());
        }
    }
    let t = Instant::now();
    eprint!("creating bench.{table} with {rows} rows ...");
    let mariadb = c.is_mariadb();
    if !mariadb {
        c.query_drop(&format!(
            "SET SESSION cte_max_recursion_depth = {}",
            FILL_CHUNK + 10
        ))
        .await?;
    }
    c.query_drop(&format!("DROP TABLE IF EXISTS {table}"))
        .await?;
    c.query_drop(&ddl.replace("{comment}", "being filled"))
        .await?;
    let mut a = 1;
    while a <= rows {
        let b = (a + FILL_CHUNK - 1).min(rows);
        c.query_drop(&select.replace("{source}", &seq_source(mariadb, a, b)))
            .await?;
        a = b + 1;
    }
    // Only a completely filled table is marked as reusable.
    c.query_drop(&format!(
        "ALTER TABLE {table} COMMENT = '{TABLE_VERSION} rows={rows}'"
    ))
    .await?;
    eprintln!(" {:.1} s", t.elapsed().as_secs_f64());
    Ok(())
}

const POINT_DDL: &str = "CREATE TABLE bench_point (
    id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    name VARCHAR(32) NOT NULL,
    price DOUBLE NOT NULL,
    qty INT NOT NULL
) ENGINE=InnoDB COMMENT='{comment}'";

const POINT_FILL: &str = "INSERT INTO bench_point (id, name, price, qty)
    SELECT g.seq, CONCAT('item-', LPAD(g.seq, 6, '0'), '-', LEFT(MD5(g.seq), 8)),
           g.seq * 1e0 / 7, g.seq % 1000
    FROM {source}";

const DECODE_DDL: &str = "CREATE TABLE bench_decode (
    id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    qty INT NOT NULL,
    price DOUBLE NOT NULL,
    name VARCHAR(32) NOT NULL,
    created DATETIME NOT NULL,
    amount DECIMAL(10,2) NOT NULL,
    note TEXT NULL
) ENGINE=InnoDB COMMENT='{comment}'";

const DECODE_FILL: &str = "INSERT INTO bench_decode (id, qty, price, name, created, amount, note)
    SELECT g.seq, CAST(g.seq % 100000 AS SIGNED) - 50000, g.seq * 1e0 / 7,
           CONCAT('name-', g.seq, '-', LEFT(MD5(g.seq), 10)),
           TIMESTAMP '2024-01-01 00:00:00' + INTERVAL g.seq SECOND,
           (g.seq % 100000) / 100,
           IF(g.seq % 10 = 0, NULL, CONCAT('note for row ', g.seq, ': ', MD5(g.seq)))
    FROM {source}";

/// What the setup learned about the server.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    pub version: String,
    pub pid: Option<u32>,
    /// Why the server does not offer zstd protocol compression, if it does not.
    pub no_zstd: Option<String>,
}

/// mysql-uring options for `url`, in plain text like mysql_async's defaults
/// (the private server offers TLS, which mysql-uring would otherwise use).
pub fn uring_opts(url: &str) -> mysql_uring::Result<mysql_uring::Opts> {
    Ok(mysql_uring::Opts::from_url(url)?.ssl_mode(mysql_uring::SslMode::Disabled))
}

/// Creates the databases and the tables the chosen workloads read, and finds
/// the server's pid. `url` is the server's URL as given.
pub fn setup(url: &str, point: bool, decode_rows: Option<u64>) -> BoxResult<ServerInfo> {
    let url = url.to_string();
    let info = mysql_uring::start(async move {
        let mut c = mysql_uring::connect(uring_opts(&url)?).await?;
        c.query_drop("CREATE DATABASE IF NOT EXISTS bench").await?;
        c.query_drop("CREATE DATABASE IF NOT EXISTS bench_tables")
            .await?;
        c.select_db("bench").await?;
        if point {
            ensure_table(&mut c, "bench_point", POINT_DDL, POINT_FILL, POINT_ROWS).await?;
        }
        if let Some(rows) = decode_rows {
            ensure_table(&mut c, "bench_decode", DECODE_DDL, DECODE_FILL, rows).await?;
        }
        c.query_drop(INSERT_DDL).await?;
        let pid_file: Option<String> = c.query("SELECT @@pid_file").await.ok().and_then(|r| {
            r.first()
                .and_then(|r| r.get::<Option<String>>(0).ok().flatten())
        });
        let version = c.server_version().to_string();
        let no_zstd = if c.is_mariadb() {
            Some("MariaDB has no zstd (MySQL 8.0.18+ only)".to_string())
        } else {
            match c.query("SELECT @@protocol_compression_algorithms").await {
                Ok(r) => {
                    let algs = r
                        .first()
                        .and_then(|r| r.get::<Option<String>>(0).ok().flatten())
                        .unwrap_or_default();
                    (!algs.to_ascii_lowercase().contains("zstd")).then(|| {
                        format!("the server does not offer zstd (protocol_compression_algorithms={algs})")
                    })
                }
                Err(_) => Some("the server does not offer zstd (MySQL 8.0.18+ only)".to_string()),
            }
        };
        c.close().await?;
        Ok::<_, mysql_uring::Error>(ServerInfo {
            version,
            pid: pid_file.and_then(|f| std::fs::read_to_string(f).ok()?.trim().parse().ok()),
            no_zstd,
        })
    })?;
    Ok(info)
}

/// Runs one statement on a fresh mysql-uring connection (between runs).
pub fn admin(url: &str, sql: &str) -> BoxResult<()> {
    let (url, sql) = (url.to_string(), sql.to_string());
    mysql_uring::start(async move {
        let mut c = mysql_uring::connect(uring_opts(&url)?).await?;
        c.query_drop(&sql).await?;
        c.close().await
    })?;
    Ok(())
}

/// `SHOW TABLES` count of the tables workload's database.
pub fn count_tables(url: &str) -> BoxResult<usize> {
    let url = url.to_string();
    let n = mysql_uring::start(async move {
        let mut c = mysql_uring::connect(uring_opts(&url)?).await?;
        let n = c.query("SHOW TABLES FROM bench_tables").await?.len();
        c.close().await?;
        Ok::<_, mysql_uring::Error>(n)
    })?;
    Ok(n)
}
