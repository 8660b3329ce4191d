//! Session set-up and control: cancellation, multi-statements, charset.

use mysql_uring::{ErrorKind, connect};

use crate::run;

#[test]
fn kill_query_interrupts_a_running_statement_and_the_connection_survives() {
    run(async {
        let mut c = crate::conn().await?;
        let mut watcher = crate::conn().await?;
        let cancel = c.cancel_handle();
        let id = c.connection_id();
        let killer = mysql_uring::runtime::spawn(async move {
            // Cancel once the statement is visibly running.
            let running = crate::wait_for_processlist(
                &mut watcher,
                &format!("ID = {id} AND COMMAND = 'Query'"),
                1,
            )
            .await?;
            cancel.cancel().await?;
            watcher.close().await?;
            Ok::<_, mysql_uring::Error>(running)
        });
        let e = c
            .query_drop(
                "SELECT COUNT(*) FROM seq_1_to_100000 a, seq_1_to_100000 b WHERE a.seq + b.seq = 3",
            )
            .await
            .unwrap_err();
        assert!(
            killer.await.expect("killer task")?,
            "the statement never showed up as running"
        );
        assert_eq!(e.kind(), ErrorKind::Server, "{e:?}");
        assert_eq!(e.code(), Some(1317), "{e}");
        assert!(e.to_string().contains("interrupted"), "{e}");
        assert_eq!(c.query("SELECT 3").await?[0].get::<i32>(0)?, 3);
        c.close().await
    })
}

#[test]
fn multi_statements_are_off_unless_enabled() {
    run(async {
        let mut c = crate::conn().await?;
        let e = c.query_drop("SELECT 1; SELECT 2").await.unwrap_err();
        assert_eq!(e.code(), Some(1064), "{e}");
        c.close().await?;

        let mut c = connect(crate::opts().multi_statements(true)).await?;
        let rows = c.query("SELECT 1 AS a; SELECT 2 AS b").await?;
        assert_eq!(rows[0].get::<i32>("a")?, 1);
        // The second result set is discarded before the next command.
        assert_eq!(c.query("SELECT 3").await?[0].get::<i32>(0)?, 3);
        // query_drop reads every result and reports a failing later statement.
        let e = c
            .query_drop("DO 1; SELECT * FROM it_no_such_table")
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(1146), "{e}");
        assert_eq!(c.query("SELECT 4").await?[0].get::<i32>(0)?, 4);
        c.close().await
    })
}

#[test]
fn charset_option_sets_the_session_charset() {
    run(async {
        let mut c = connect(crate::opts().charset("latin1")?).await?;
        let cs: String = c.query("SELECT @@character_set_client").await?[0].get(0)?;
        assert_eq!(cs, "latin1");
        c.close().await?;
        let mut c = crate::conn().await?;
        let cs: String = c.query("SELECT @@character_set_client").await?[0].get(0)?;
        assert_eq!(cs, "utf8mb4", "utf8mb4 is the default");
        assert_eq!(
            crate::opts().charset("latin1; DROP").unwrap_err().kind(),
            ErrorKind::Config
        );
        c.close().await
    })
}

#[test]
fn load_data_local_infile_reads_only_allowed_directories() {
    run(async {
        let dir = std::env::temp_dir().join(format!("mysql-uring-infile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let data = dir.join("dishes.csv");
        let mut csv = String::new();
        for i in 0..50_000 {
            csv.push_str(&format!("{i},dish number {i}\n"));
        }
        std::fs::write(&data, &csv).unwrap();
        let outside =
            std::env::temp_dir().join(format!("mysql-uring-outside-{}.csv", std::process::id()));
        std::fs::write(&outside, "1,secret\n").unwrap();
        let load = |p: &std::path::Path| {
            format!(
                "LOAD DATA LOCAL INFILE '{}' INTO TABLE it_infile.t FIELDS TERMINATED BY ','",
                p.display()
            )
        };

        let mut root = crate::conn().await?;
        crate::scratch_db(&mut root, "infile").await?;
        root.query_drop("CREATE TABLE t (id INT PRIMARY KEY, name TEXT)")
            .await?;

        // Off by default: the server refuses, nothing is read, the connection stays usable.
        let e = root.query_drop(&load(&data)).await.unwrap_err();
        assert!(
            matches!(e.kind(), ErrorKind::Server | ErrorKind::Usage),
            "{e:?}"
        );
        assert_eq!(
            root.query("SELECT COUNT(*) FROM t").await?[0].get::<i64>(0)?,
            0
        );

        let mut c = connect(crate::opts().local_infile_dir(&dir)).await?;
        let o = c.query_drop(&load(&data)).await?;
        assert_eq!(o.affected_rows, 50_000);
        let r = &c
            .query("SELECT COUNT(*), MAX(name) FROM it_infile.t")
            .await?[0];
        assert_eq!(r.get::<i64>(0)?, 50_000);
        assert_eq!(r.get::<&str>(1)?, "dish number 9999");

        // A file outside the allowed directory is refused without sending it.
        let e = c.query_drop(&load(&outside)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Usage, "{e:?}");
        assert!(e.to_string().contains("not a file under an allowed"), "{e}");
        let n: i64 = c
            .query("SELECT COUNT(*) FROM it_infile.t WHERE name = 'secret'")
            .await?[0]
            .get(0)?;
        assert_eq!(n, 0);
        assert_eq!(c.query("SELECT 1").await?[0].get::<i32>(0)?, 1);
        c.close().await?;
        root.query_drop("DROP DATABASE it_infile").await?;
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(&outside);
        root.close().await
    })
}

#[test]
fn load_local_data_streams_a_reader_and_never_commits_a_partial_load() {
    run(async {
        let mut c = connect(crate::opts().local_infile_reader(true)).await?;
        crate::scratch_db(&mut c, "infile_reader").await?;
        c.query_drop("CREATE TABLE t (id INT PRIMARY KEY, name TEXT)")
            .await?;
        let load = "LOAD DATA LOCAL INFILE 'any-name' INTO TABLE t FIELDS TERMINATED BY ','";
        // More than one 64 KiB chunk.
        let csv: String = (0..20_000).map(|i| format!("{i},name {i}\n")).collect();
        let o = c.load_local_data(load, csv.as_bytes()).await?;
        assert_eq!(o.affected_rows, 20_000);
        assert_eq!(
            c.query("SELECT COUNT(*) FROM t").await?[0].get::<i64>(0)?,
            20_000
        );

        // A reader that fails half way: the error is the reader's, and the
        // connection is closed so the server rolls the partial load back
        // rather than committing it.
        struct Failing(usize);
        impl std::io::Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0 == 0 {
                    return Err(std::io::Error::other("disk on fire"));
                }
                self.0 -= 1;
                let line = b"99999,last\n";
                buf[..line.len()].copy_from_slice(line);
                Ok(line.len())
            }
        }
        let e = c.load_local_data(load, Failing(1)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Io, "{e:?}");
        assert!(e.to_string().contains("disk on fire"), "{e}");
        assert!(c.is_broken());
        let mut c = crate::conn().await?;
        c.select_db("it_infile_reader").await?;
        let n = c.query("SELECT COUNT(*) FROM t WHERE id = 99999").await?[0].get::<i64>(0)?;
        assert_eq!(n, 0, "the partial load was not committed");

        // Without the option it is refused before anything is sent.
        let mut plain = crate::conn().await?;
        let e = plain
            .load_local_data(load, &b"1,x\n"[..])
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Usage, "{e:?}");
        plain.close().await?;
        c.query_drop("DROP DATABASE it_infile_reader").await?;
        c.close().await
    })
}
