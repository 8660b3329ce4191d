//! Values whose length prefixes look like packet markers, and packets over 16 MiB.

use crate::run;

#[test]
fn length_prefixes_fc_fd_fe_are_values_not_markers() {
    run(async {
        let mut c = crate::conn().await?;
        // 300 bytes: 0xFC prefix; 70,000: 0xFD; the first column decides the packet's first byte.
        for n in [250usize, 251, 300, 65_535, 65_536, 70_000] {
            let rows = c.query(&format!("SELECT REPEAT('a', {n}), 'tail'")).await?;
            assert_eq!(rows.len(), 1);
            assert_eq!(rows[0].get::<&str>(0)?.len(), n);
            assert_eq!(rows[0].get::<&str>(1)?, "tail");
        }
        c.close().await
    })
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "needs max_allowed_packet >= 40M (the private server has it)"
)]
fn row_and_query_over_16_mib_are_joined_and_split() {
    run(async {
        // Plain TCP, then TLS (the default, preferred, uses it with the private server).
        for mode in [
            mysql_uring::SslMode::Disabled,
            mysql_uring::SslMode::Preferred,
        ] {
            let mut c = mysql_uring::connect(crate::opts().ssl_mode(mode)).await?;
            assert_eq!(c.is_tls(), mode == mysql_uring::SslMode::Preferred);
            // A row of more than 0xFFFFFF bytes: its first byte is 0xFE (8-byte length) and it
            // spans two physical packets, the last one possibly short.
            let n = 17 * 1024 * 1024;
            let rows = c.query(&format!("SELECT REPEAT('b', {n}), 42")).await?;
            let v: &str = rows[0].get(0)?;
            assert_eq!(v.len(), n);
            assert!(v.bytes().all(|b| b == b'b'));
            assert_eq!(rows[0].get::<i32>(1)?, 42);

            // A row payload of exactly 0xFFFFFF bytes, which the server must follow with
            // an empty packet: 4-byte length prefix (0xFD) + value + 2 bytes for "1".
            let exact = 0xFF_FFFF - 4 - 2;
            let rows = c.query(&format!("SELECT REPEAT('c', {exact}), 1")).await?;
            assert_eq!(rows[0].get::<&str>(0)?.len(), exact);

            // A query of more than 16 MiB is split on write.
            let big = "d".repeat(20 * 1024 * 1024);
            let rows = c
                .query(&format!(
                    "SELECT LENGTH('{big}'), MD5('{big}') = MD5(REPEAT('d', {}))",
                    big.len()
                ))
                .await?;
            assert_eq!(rows[0].get::<u64>(0)?, big.len() as u64);
            assert!(rows[0].get::<bool>(1)?);
            c.ping().await?;
            c.close().await?;
        }
        Ok(())
    })
}

#[test]
#[cfg_attr(
    external_server,
    ignore = "needs max_allowed_packet >= 64M (the private server has it)"
)]
fn a_40_mib_blob_round_trips_both_ways() {
    run(async {
        let mut c = crate::conn().await?;
        crate::scratch_db(&mut c, "blob40").await?;
        c.query_drop("CREATE TABLE t (id INT PRIMARY KEY, b LONGBLOB)")
            .await?;
        // Every byte that needs escaping appears, spread over three physical packets.
        let alphabet: Vec<char> = (0u8..128).map(char::from).collect();
        let data: String = (0..40 * 1024 * 1024)
            .map(|i| alphabet[(i * 7 + i / 1000) % alphabet.len()])
            .collect();
        let o = c
            .query_drop(&format!("INSERT INTO t VALUES (1, {})", c.quote(&data)))
            .await?;
        assert_eq!(o.affected_rows, 1);
        let rows = c.query("SELECT b, LENGTH(b) FROM t WHERE id = 1").await?;
        assert_eq!(rows[0].get::<u64>(1)?, data.len() as u64);
        let got = rows[0].get_raw(0)?.expect("not NULL");
        assert!(got == data.as_bytes(), "the blob came back changed");
        c.query_drop("DROP DATABASE it_blob40").await?;
        c.close().await
    })
}
