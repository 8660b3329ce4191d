//! sysbench's tests: their schema, statements, and the statements (with
//! parameters) of one event, drawn in the same order from the same
//! distributions as sysbench's Lua scripts (`oltp_common.lua` and the test
//! scripts of sysbench 1.0).

use mysql_uring::{ToValue, ValueRef};

use super::opts::Opts;
use super::rand::{C_TEMPLATE, PAD_TEMPLATE, Rand, Unique};

/// sysbench's database tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Test {
    PointSelect,
    ReadOnly,
    ReadWrite,
    WriteOnly,
    UpdateIndex,
    UpdateNonIndex,
    Delete,
    Insert,
    RandomPoints,
    RandomRanges,
    BulkInsert,
}

impl Test {
    /// Every test, in sysbench's order of listing.
    pub const ALL: [Test; 11] = [
        Test::BulkInsert,
        Test::Delete,
        Test::Insert,
        Test::PointSelect,
        Test::ReadOnly,
        Test::ReadWrite,
        Test::UpdateIndex,
        Test::UpdateNonIndex,
        Test::WriteOnly,
        Test::RandomPoints,
        Test::RandomRanges,
    ];

    /// sysbench's name (its script's name without `.lua`).
    pub fn name(self) -> &'static str {
        match self {
            Test::PointSelect => "oltp_point_select",
            Test::ReadOnly => "oltp_read_only",
            Test::ReadWrite => "oltp_read_write",
            Test::WriteOnly => "oltp_write_only",
            Test::UpdateIndex => "oltp_update_index",
            Test::UpdateNonIndex => "oltp_update_non_index",
            Test::Delete => "oltp_delete",
            Test::Insert => "oltp_insert",
            Test::RandomPoints => "select_random_points",
            Test::RandomRanges => "select_random_ranges",
            Test::BulkInsert => "bulk_insert",
        }
    }

    /// The test called `s`.
    pub fn parse(s: &str) -> Option<Test> {
        Test::ALL.into_iter().find(|t| t.name() == s)
    }

    /// Whether the test wraps its event in BEGIN/COMMIT (unless `--skip-trx`).
    fn transactional(self) -> bool {
        matches!(self, Test::ReadOnly | Test::ReadWrite | Test::WriteOnly)
    }
}

/// The statements the tests run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stmt {
    Begin,
    Commit,
    PointSelect,
    SimpleRange,
    SumRange,
    OrderRange,
    DistinctRange,
    IndexUpdate,
    NonIndexUpdate,
    Delete,
    Insert,
    /// oltp_insert's INSERT: SQL text, never prepared (as sysbench's `con:query`).
    InsertText,
    RandomPoints,
    RandomRanges,
}

impl Stmt {
    const COUNT: usize = 14;

    /// The statement's SQL with `%u` where the table number goes.
    pub fn template(self) -> &'static str {
        match self {
            Stmt::Begin => "BEGIN",
            Stmt::Commit => "COMMIT",
            Stmt::PointSelect => "SELECT c FROM sbtest%u WHERE id=?",
            Stmt::SimpleRange => "SELECT c FROM sbtest%u WHERE id BETWEEN ? AND ?",
            Stmt::SumRange => "SELECT SUM(k) FROM sbtest%u WHERE id BETWEEN ? AND ?",
            Stmt::OrderRange => "SELECT c FROM sbtest%u WHERE id BETWEEN ? AND ? ORDER BY c",
            Stmt::DistinctRange => {
                "SELECT DISTINCT c FROM sbtest%u WHERE id BETWEEN ? AND ? ORDER BY c"
            }
            Stmt::IndexUpdate => "UPDATE sbtest%u SET k=k+1 WHERE id=?",
            Stmt::NonIndexUpdate => "UPDATE sbtest%u SET c=? WHERE id=?",
            Stmt::Delete => "DELETE FROM sbtest%u WHERE id=?",
            Stmt::Insert | Stmt::InsertText => {
                "INSERT INTO sbtest%u (id, k, c, pad) VALUES (?, ?, ?, ?)"
            }
            Stmt::RandomPoints => "SELECT id, k, c, pad FROM sbtest%u WHERE k IN (%points)",
            Stmt::RandomRanges => "SELECT count(k) FROM sbtest%u WHERE %ranges",
        }
    }

    /// Whether `--db-ps-mode=auto` runs it as a server-side prepared statement.
    pub fn prepared(self) -> bool {
        self != Stmt::InsertText
    }
}

/// One parameter: sysbench binds INT and CHAR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Int(i64),
    Str(String),
}

impl ToValue for Arg {
    fn to_value(&self) -> ValueRef<'_> {
        match self {
            Arg::Int(i) => ValueRef::Int(*i),
            Arg::Str(s) => ValueRef::Text(s),
        }
    }
}

/// One statement of an event, with its table and parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub stmt: Stmt,
    /// The table number (`sbtestN`).
    pub table: u32,
    pub args: Vec<Arg>,
}

/// The SQL text of every statement for every table, made once.
#[derive(Debug)]
pub struct Sql {
    /// `[stmt][table - 1]`.
    texts: Vec<Vec<String>>,
}

impl Sql {
    /// The statements of `o.test` on `o.tables` tables.
    pub fn new(o: &Opts) -> Sql {
        let points = vec!["?"; o.random_points as usize].join(", ");
        let ranges = vec!["k BETWEEN ? AND ?"; o.number_of_ranges as usize].join(" OR ");
        let all = [
            Stmt::Begin,
            Stmt::Commit,
            Stmt::PointSelect,
            Stmt::SimpleRange,
            Stmt::SumRange,
            Stmt::OrderRange,
            Stmt::DistinctRange,
            Stmt::IndexUpdate,
            Stmt::NonIndexUpdate,
            Stmt::Delete,
            Stmt::Insert,
            Stmt::InsertText,
            Stmt::RandomPoints,
            Stmt::RandomRanges,
        ];
        debug_assert_eq!(all.len(), Stmt::COUNT);
        let texts = all
            .iter()
            .map(|s| {
                (1..=o.tables.max(1))
                    .map(|t| {
                        s.template()
                            .replace("%u", &t.to_string())
                            .replace("%points", &points)
                            .replace("%ranges", &ranges)
                    })
                    .collect()
            })
            .collect();
        Sql { texts }
    }

    /// `stmt`'s SQL for table `table`.
    #[inline]
    pub fn get(&self, stmt: Stmt, table: u32) -> &str {
        &self.texts[stmt as usize][table as usize - 1]
    }
}

/// Draws events: the statements and parameters of one sysbench event.
#[derive(Debug, Clone)]
pub struct Events {
    test: Test,
    tables: u32,
    table_size: u32,
    range_size: u32,
    /// Per group: point, simple, sum, order, distinct, index, non-index, delete/insert.
    counts: [u32; 8],
    range_selects: bool,
    trx: bool,
    auto_inc: bool,
    random_points: u32,
    number_of_ranges: u32,
    delta: u32,
    /// select_random_*: this connection's slice of the table.
    rmin: f64,
    rlen: f64,
}

impl Events {
    /// Events for connection `thread` (0-based, of `o.threads`).
    pub fn new(o: &Opts, thread: usize) -> Events {
        let point_selects = if o.test == Test::PointSelect {
            1
        } else {
            o.point_selects
        };
        // Lua divides in floating point: each thread's share of the table.
        let rlen = o.table_size as f64 / o.threads as f64;
        Events {
            test: o.test,
            tables: o.tables,
            table_size: o.table_size,
            range_size: o.range_size,
            counts: [
                point_selects,
                o.simple_ranges,
                o.sum_ranges,
                o.order_ranges,
                o.distinct_ranges,
                o.index_updates,
                o.non_index_updates,
                o.delete_inserts,
            ],
            range_selects: o.range_selects,
            trx: !o.skip_trx && o.test.transactional(),
            auto_inc: o.auto_inc,
            random_points: o.random_points,
            number_of_ranges: o.number_of_ranges,
            delta: o.delta,
            rmin: rlen * (thread % o.threads) as f64,
            rlen,
        }
    }

    fn id(&self, r: &mut Rand) -> i64 {
        r.default(1, self.table_size).into()
    }

    fn table(&self, r: &mut Rand) -> u32 {
        r.uniform(1, self.tables)
    }

    /// `n` statements `stmt` on one random table, each with an id (and a
    /// range end when `range`).
    fn ids(&self, r: &mut Rand, out: &mut Vec<Query>, stmt: Stmt, n: u32, range: bool) {
        let table = self.table(r);
        for _ in 0..n {
            let id = self.id(r);
            let args = if range {
                vec![Arg::Int(id), Arg::Int(id + self.range_size as i64 - 1)]
            } else {
                vec![Arg::Int(id)]
            };
            out.push(Query { stmt, table, args });
        }
    }

    fn one(out: &mut Vec<Query>, stmt: Stmt) {
        out.push(Query {
            stmt,
            table: 1,
            args: Vec::new(),
        });
    }

    fn reads(&self, r: &mut Rand, out: &mut Vec<Query>) {
        self.ids(r, out, Stmt::PointSelect, self.counts[0], false);
        if self.range_selects {
            for (i, stmt) in [
                Stmt::SimpleRange,
                Stmt::SumRange,
                Stmt::OrderRange,
                Stmt::DistinctRange,
            ]
            .into_iter()
            .enumerate()
            {
                self.ids(r, out, stmt, self.counts[1 + i], true);
            }
        }
    }

    fn index_updates(&self, r: &mut Rand, out: &mut Vec<Query>) {
        self.ids(r, out, Stmt::IndexUpdate, self.counts[5], false);
    }

    fn non_index_updates(&self, r: &mut Rand, out: &mut Vec<Query>) {
        let table = self.table(r);
        for _ in 0..self.counts[6] {
            let c = r.string(C_TEMPLATE);
            let id = self.id(r);
            out.push(Query {
                stmt: Stmt::NonIndexUpdate,
                table,
                args: vec![Arg::Str(c), Arg::Int(id)],
            });
        }
    }

    fn delete_inserts(&self, r: &mut Rand, out: &mut Vec<Query>) {
        let table = self.table(r);
        for _ in 0..self.counts[7] {
            let id = self.id(r);
            let k = self.id(r);
            let c = r.string(C_TEMPLATE);
            let pad = r.string(PAD_TEMPLATE);
            out.push(Query {
                stmt: Stmt::Delete,
                table,
                args: vec![Arg::Int(id)],
            });
            out.push(Query {
                stmt: Stmt::Insert,
                table,
                args: vec![Arg::Int(id), Arg::Int(k), Arg::Str(c), Arg::Str(pad)],
            });
        }
    }

    /// sysbench's `sb_rand(rmin, rmax)` over this connection's slice (the
    /// bounds truncated to integers, as the Lua-to-C call does).
    fn in_slice(&self, r: &mut Rand) -> i64 {
        r.default(self.rmin as u32, (self.rmin + self.rlen) as u32)
            .into()
    }

    /// One event's statements into `out` (cleared first). Empty for
    /// bulk_insert (see [`Bulk`]).
    pub fn event(&self, r: &mut Rand, unique: &Unique, out: &mut Vec<Query>) {
        out.clear();
        if self.trx {
            Self::one(out, Stmt::Begin);
        }
        match self.test {
            Test::PointSelect => self.ids(r, out, Stmt::PointSelect, 1, false),
            Test::ReadOnly => self.reads(r, out),
            Test::ReadWrite => {
                self.reads(r, out);
                self.index_updates(r, out);
                self.non_index_updates(r, out);
                self.delete_inserts(r, out);
            }
            Test::WriteOnly => {
                self.index_updates(r, out);
                self.non_index_updates(r, out);
                self.delete_inserts(r, out);
            }
            Test::UpdateIndex => self.index_updates(r, out),
            Test::UpdateNonIndex => self.non_index_updates(r, out),
            Test::Delete => {
                let table = self.table(r);
                let id = self.id(r);
                out.push(Query {
                    stmt: Stmt::Delete,
                    table,
                    args: vec![Arg::Int(id)],
                });
            }
            Test::Insert => {
                let table = self.table(r);
                let k = self.id(r);
                let c = r.string(C_TEMPLATE);
                let pad = r.string(PAD_TEMPLATE);
                // AUTO_INCREMENT: 0 lets the server choose; otherwise a
                // unique 32-bit value shifted into INT's range.
                let id = if self.auto_inc {
                    0
                } else {
                    unique.next() as i64 - 2_147_483_648
                };
                out.push(Query {
                    stmt: Stmt::InsertText,
                    table,
                    args: vec![Arg::Int(id), Arg::Int(k), Arg::Str(c), Arg::Str(pad)],
                });
            }
            Test::RandomPoints => {
                let args = (0..self.random_points)
                    .map(|_| Arg::Int(self.in_slice(r)))
                    .collect();
                out.push(Query {
                    stmt: Stmt::RandomPoints,
                    table: 1,
                    args,
                });
            }
            Test::RandomRanges => {
                let mut args = Vec::with_capacity(2 * self.number_of_ranges as usize);
                for _ in 0..self.number_of_ranges {
                    let v = self.in_slice(r);
                    args.push(Arg::Int(v));
                    args.push(Arg::Int(v + self.delta as i64));
                }
                out.push(Query {
                    stmt: Stmt::RandomRanges,
                    table: 1,
                    args,
                });
            }
            Test::BulkInsert => {}
        }
        if self.trx {
            Self::one(out, Stmt::Commit);
        }
    }
}

/// sysbench's cap on one multi-row INSERT (its bulk-insert buffer).
pub const BULK_PACKET_SIZE: usize = 512 * 1024;

/// A multi-row INSERT being built: `INSERT INTO t VALUES(..),(..)`, sent
/// when the next row would not fit in [`BULK_PACKET_SIZE`].
#[derive(Debug)]
pub struct Bulk {
    buf: String,
    head: usize,
    rows: usize,
}

impl Bulk {
    /// A bulk insert of rows after `head` (e.g. `INSERT INTO sbtest1 VALUES`).
    pub fn new(head: &str) -> Bulk {
        let mut buf = String::with_capacity(BULK_PACKET_SIZE);
        buf.push_str(head);
        Bulk {
            head: head.len(),
            buf,
            rows: 0,
        }
    }

    /// Adds `row` (e.g. `(1,1)`); returns the full statement to run first
    /// when the buffer had no room left for it.
    pub fn push(&mut self, row: &str) -> Option<String> {
        let sep = usize::from(self.rows > 0);
        let flushed = if self.buf.len() + row.len() + 1 + sep > BULK_PACKET_SIZE && self.rows > 0 {
            self.take()
        } else {
            None
        };
        if self.rows > 0 {
            self.buf.push(',');
        }
        self.buf.push_str(row);
        self.rows += 1;
        flushed
    }

    /// The statement with the rows so far, if any; the buffer starts over.
    pub fn take(&mut self) -> Option<String> {
        if self.rows == 0 {
            return None;
        }
        let sql = self.buf.clone();
        self.buf.truncate(self.head);
        self.rows = 0;
        Some(sql)
    }
}

/// The `CREATE TABLE` of `sbtestN`, as oltp_common.lua writes it.
pub fn create_table_sql(o: &Opts, n: u32) -> String {
    let id = if o.auto_inc {
        "INTEGER NOT NULL AUTO_INCREMENT"
    } else {
        "INTEGER NOT NULL"
    };
    let key = if o.secondary {
        "KEY xid"
    } else {
        "PRIMARY KEY"
    };
    format!(
        "CREATE TABLE sbtest{n}(\n  id {id},\n  k INTEGER DEFAULT '0' NOT NULL,\n  \
         c CHAR(120) DEFAULT '' NOT NULL,\n  pad CHAR(60) DEFAULT '' NOT NULL,\n  \
         {key} (id)\n) /*! ENGINE = {} */ {}",
        o.storage_engine, o.create_table_options
    )
}

/// bulk_insert.lua's table.
pub fn create_bulk_table_sql(n: usize) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS sbtest{n} (\n  id INTEGER NOT NULL,\n  \
         k INTEGER DEFAULT '0' NOT NULL,\n  PRIMARY KEY (id))"
    )
}

/// One row of the prepare's INSERT: `(k, 'c', 'pad')`, or `(id, k, 'c',
/// 'pad')` without `--auto-inc`; `c` and `pad` are drawn first, as sysbench
/// does.
pub fn prepare_row(o: &Opts, r: &mut Rand, id: u32, out: &mut String) {
    use std::fmt::Write as _;
    let c = r.string(C_TEMPLATE);
    let pad = r.string(PAD_TEMPLATE);
    let k = r.default(1, o.table_size);
    out.clear();
    if o.auto_inc {
        let _ = write!(out, "({k}, '{c}', '{pad}')");
    } else {
        let _ = write!(out, "({id}, {k}, '{c}', '{pad}')");
    }
}

#[cfg(test)]
mod tests {
    use super::super::opts::Command;
    use super::super::rand::RandParams;
    use super::*;

    fn stmts(o: &Opts) -> Vec<Stmt> {
        let mut r = Rand::new(RandParams::default(), 1, 2);
        let mut out = Vec::new();
        Events::new(o, 0).event(&mut r, &Unique::new(1, 2), &mut out);
        out.iter().map(|q| q.stmt).collect()
    }

    fn opts(t: Test) -> Opts {
        Opts::defaults(t, Command::Run)
    }

    #[test]
    fn statement_lists_per_test() {
        use Stmt::*;
        let reads = [
            [PointSelect; 10].as_slice(),
            &[SimpleRange, SumRange, OrderRange, DistinctRange],
        ]
        .concat();
        let writes = [IndexUpdate, NonIndexUpdate, Delete, Insert];
        assert_eq!(stmts(&opts(Test::PointSelect)), [PointSelect]);
        assert_eq!(
            stmts(&opts(Test::ReadOnly)),
            [&[Begin][..], &reads, &[Commit]].concat()
        );
        assert_eq!(
            stmts(&opts(Test::ReadWrite)),
            [&[Begin][..], &reads, &writes, &[Commit]].concat()
        );
        assert_eq!(
            stmts(&opts(Test::WriteOnly)),
            [&[Begin][..], &writes, &[Commit]].concat()
        );
        assert_eq!(stmts(&opts(Test::UpdateIndex)), [IndexUpdate]);
        assert_eq!(stmts(&opts(Test::UpdateNonIndex)), [NonIndexUpdate]);
        assert_eq!(stmts(&opts(Test::Delete)), [Delete]);
        assert_eq!(stmts(&opts(Test::Insert)), [InsertText]);
        assert_eq!(stmts(&opts(Test::RandomPoints)), [RandomPoints]);
        assert_eq!(stmts(&opts(Test::RandomRanges)), [RandomRanges]);
        assert_eq!(stmts(&opts(Test::BulkInsert)), []);
    }

    #[test]
    fn options_shape_the_lists() {
        use Stmt::*;
        let mut o = opts(Test::ReadOnly);
        o.skip_trx = true;
        o.range_selects = false;
        o.point_selects = 3;
        assert_eq!(stmts(&o), [PointSelect; 3]);
        // oltp_point_select always runs one point select.
        let mut o = opts(Test::PointSelect);
        o.point_selects = 7;
        assert_eq!(stmts(&o), [PointSelect]);
        let mut o = opts(Test::ReadWrite);
        o.skip_trx = true;
        o.range_selects = false;
        o.point_selects = 0;
        o.index_updates = 2;
        o.non_index_updates = 0;
        o.delete_inserts = 2;
        assert_eq!(
            stmts(&o),
            [IndexUpdate, IndexUpdate, Delete, Insert, Delete, Insert]
        );
    }

    #[test]
    fn parameters_follow_the_scripts() {
        let mut o = opts(Test::ReadWrite);
        o.tables = 4;
        o.table_size = 1000;
        o.range_size = 50;
        let mut r = Rand::new(RandParams::default(), 3, 4);
        let mut out = Vec::new();
        Events::new(&o, 0).event(&mut r, &Unique::new(1, 2), &mut out);
        // One table per group: the ten point selects share theirs.
        let t0 = out[1].table;
        assert!(
            out[1..11]
                .iter()
                .all(|q| q.table == t0 && (1..=4).contains(&q.table))
        );
        for q in &out {
            match (q.stmt, q.args.as_slice()) {
                (Stmt::SimpleRange, [Arg::Int(a), Arg::Int(b)]) => assert_eq!(b - a, 49),
                (Stmt::PointSelect | Stmt::IndexUpdate | Stmt::Delete, [Arg::Int(id)]) => {
                    assert!((1..=1000).contains(id))
                }
                (Stmt::NonIndexUpdate, [Arg::Str(c), Arg::Int(_)]) => assert_eq!(c.len(), 119),
                (Stmt::Insert, [Arg::Int(_), Arg::Int(_), Arg::Str(c), Arg::Str(p)]) => {
                    assert_eq!((c.len(), p.len()), (119, 59))
                }
                _ => {}
            }
        }
        // The delete and the insert after it use the same id.
        let d = out.iter().position(|q| q.stmt == Stmt::Delete).unwrap();
        assert_eq!(out[d].args[0], out[d + 1].args[0]);
    }

    #[test]
    fn sql_text_is_sysbenchs() {
        let mut o = opts(Test::RandomPoints);
        o.tables = 2;
        o.random_points = 3;
        o.number_of_ranges = 2;
        let s = Sql::new(&o);
        assert_eq!(
            s.get(Stmt::PointSelect, 2),
            "SELECT c FROM sbtest2 WHERE id=?"
        );
        assert_eq!(
            s.get(Stmt::DistinctRange, 1),
            "SELECT DISTINCT c FROM sbtest1 WHERE id BETWEEN ? AND ? ORDER BY c"
        );
        assert_eq!(
            s.get(Stmt::RandomPoints, 1),
            "SELECT id, k, c, pad FROM sbtest1 WHERE k IN (?, ?, ?)"
        );
        assert_eq!(
            s.get(Stmt::RandomRanges, 1),
            "SELECT count(k) FROM sbtest1 WHERE k BETWEEN ? AND ? OR k BETWEEN ? AND ?"
        );
        assert!(
            create_table_sql(&o, 3)
                .starts_with("CREATE TABLE sbtest3(\n  id INTEGER NOT NULL AUTO_INCREMENT,")
        );
        assert!(create_table_sql(&o, 3).contains("PRIMARY KEY (id)\n) /*! ENGINE = innodb */"));
    }

    #[test]
    fn random_points_stay_in_the_connections_slice() {
        let mut o = opts(Test::RandomPoints);
        o.threads = 4;
        o.table_size = 1000;
        o.rand.kind = super::super::rand::RandType::Uniform;
        let mut r = Rand::new(o.rand, 5, 6);
        let mut out = Vec::new();
        Events::new(&o, 2).event(&mut r, &Unique::new(1, 2), &mut out);
        for a in &out[0].args {
            let Arg::Int(v) = a else { panic!() };
            assert!((500..=750).contains(v), "{v}");
        }
    }

    #[test]
    fn inserts_without_auto_inc_use_unique_ids() {
        let mut o = opts(Test::Insert);
        o.auto_inc = false;
        let u = Unique::new(9, 9);
        let mut r = Rand::new(RandParams::default(), 1, 1);
        let e = Events::new(&o, 0);
        let mut ids = Vec::new();
        let mut out = Vec::new();
        for _ in 0..1000 {
            e.event(&mut r, &u, &mut out);
            ids.push(out[0].args[0].clone());
        }
        ids.dedup();
        assert_eq!(ids.len(), 1000);
        o.auto_inc = true;
        Events::new(&o, 0).event(&mut r, &u, &mut out);
        assert_eq!(out[0].args[0], Arg::Int(0));
    }

    #[test]
    fn bulk_inserts_split_at_512_kib() {
        let mut b = Bulk::new("INSERT INTO sbtest1 VALUES");
        assert_eq!(b.push("(1,1)"), None);
        assert_eq!(b.push("(2,2)"), None);
        assert_eq!(
            b.take().as_deref(),
            Some("INSERT INTO sbtest1 VALUES(1,1),(2,2)")
        );
        assert_eq!(b.take(), None);
        let mut flushed = Vec::new();
        for i in 0..100_000 {
            if let Some(s) = b.push(&format!("({i},{i})")) {
                flushed.push(s);
            }
        }
        assert!(!flushed.is_empty());
        assert!(flushed.iter().all(|s| s.len() < BULK_PACKET_SIZE));
        assert!(flushed[0].len() > BULK_PACKET_SIZE - 20);
    }
}
