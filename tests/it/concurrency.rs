//! Many connections on one io_uring thread make progress concurrently.

use crate::run;

#[test]
fn a_blocked_connection_does_not_block_the_others() {
    // Without timing: B waits on a lock that A holds; A can only release it
    // if the runtime keeps serving A while B's query is outstanding.
    run(async {
        let mut a = crate::conn().await?;
        let mut b = crate::conn().await?;
        let lock = format!("mu_lock_{}", std::process::id());
        assert_eq!(
            a.query(&format!("SELECT GET_LOCK('{lock}', 5)")).await?[0].get::<i32>(0)?,
            1
        );
        let b_id = b.connection_id();
        let sql = format!("SELECT GET_LOCK('{lock}', 30)");
        let waiter = mysql_uring::runtime::spawn(async move {
            let got: i32 = b.query(&sql).await?[0].get(0)?;
            b.close().await?;
            Ok::<_, mysql_uring::Error>(got)
        });
        // Wait until the server shows B blocked on the lock, then release it.
        let seen =
            crate::wait_for_processlist(&mut a, &format!("ID = {b_id} AND STATE LIKE '%lock%'"), 1)
                .await?;
        assert!(seen, "B never showed up as waiting for the lock");
        a.query_drop(&format!("DO RELEASE_LOCK('{lock}')")).await?;
        assert_eq!(
            waiter.await.expect("task")?,
            1,
            "B got the lock after A released it"
        );
        a.close().await
    })
}

#[test]
fn sixty_four_tasks_share_one_thread() {
    run(async {
        let mut tasks = Vec::new();
        for i in 0..64u64 {
            tasks.push(mysql_uring::runtime::spawn(async move {
                let mut c = crate::conn().await?;
                let mut sum = 0u64;
                for j in 0..20u64 {
                    sum += c.query(&format!("SELECT {i} * 1000 + {j}")).await?[0].get::<u64>(0)?;
                }
                c.close().await?;
                Ok::<_, mysql_uring::Error>(sum)
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await.expect("task")?;
        }
        let expected: u64 = (0..64u64)
            .flat_map(|i| (0..20u64).map(move |j| i * 1000 + j))
            .sum();
        assert_eq!(total, expected);
        Ok(())
    })
}
