//! The thread-per-core runtime: cores, pinning, results, panics.

use std::rc::Rc;
use std::sync::Arc;

use mysql_uring::runtime::{Runtime, current_core};
use mysql_uring::{ErrorKind, Result};

#[test]
fn every_core_runs_its_own_future_on_its_own_thread() {
    let rt = Runtime::builder().cores(3).build().expect("runtime");
    assert_eq!(rt.cores(), 3);
    let out = rt.run_on_all(|core| async move {
        // Not Send: lives and dies on this core.
        let local = Rc::new(core);
        let mut c = crate::conn().await?;
        let id: u64 = c.query("SELECT CONNECTION_ID()").await?[0].get(0)?;
        c.close().await?;
        let name = std::thread::current().name().map(str::to_string);
        Ok((*local, current_core(), name, id))
    });
    let out: Vec<_> = out.into_iter().collect::<Result<_>>().expect("all cores");
    let mut ids = Vec::new();
    for (i, (core, current, name, id)) in out.into_iter().enumerate() {
        assert_eq!(core, i, "results are in core order");
        assert_eq!(current, Some(i));
        assert_eq!(name.as_deref(), Some(&*format!("mysql-uring-core-{i}")));
        ids.push(id);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "one connection per core");
    assert_eq!(current_core(), None, "the test thread is not a core");
}

#[test]
fn pinned_cores_run_on_their_cpu() {
    let rt = Runtime::builder()
        .cores(2)
        .pin(true)
        .build()
        .expect("runtime");
    let cpus = rt.run_on_all(|_| async move {
        // SAFETY: sched_getcpu has no preconditions.
        Ok(unsafe { libc::sched_getcpu() })
    });
    for (i, cpu) in cpus.into_iter().enumerate() {
        let cpu = cpu.expect("core ran");
        assert_eq!(Some(cpu as usize), rt.cpu(i), "core {i}");
    }
}

#[test]
fn unpinned_cores_have_no_cpu() {
    let rt = Runtime::builder().cores(1).build().expect("runtime");
    assert_eq!(rt.cpu(0), None);
    assert!(rt.ring_setup(0).is_some());
    assert_eq!(rt.ring_setup(1), None);
}

#[test]
fn a_panic_on_a_core_is_an_error_and_the_core_lives_on() {
    let rt = Runtime::builder().cores(2).build().expect("runtime");
    let out = rt.run_on_all(|core| async move {
        if core == 1 {
            panic!("boom on purpose");
        }
        Ok(core)
    });
    assert_eq!(*out[0].as_ref().expect("core 0 is fine"), 0);
    let e = out[1].as_ref().expect_err("core 1 panicked");
    assert_eq!(e.kind(), ErrorKind::Usage);
    assert!(e.to_string().contains("boom on purpose"), "{e}");
    assert!(e.to_string().contains("core 1"), "{e}");

    // A panic while building the future, too.
    let e = rt
        .run_on(0, |_| -> std::future::Ready<Result<()>> {
            panic!("no future")
        })
        .expect_err("panicked");
    assert!(e.to_string().contains("no future"), "{e}");

    // Both cores still work.
    let again = rt.run_on_all(|core| async move { Ok(core * 10) });
    assert_eq!(
        again
            .into_iter()
            .map(|r| r.expect("ok"))
            .collect::<Vec<_>>(),
        vec![0, 10]
    );
}

#[test]
fn run_on_one_core() {
    let rt = Runtime::builder().cores(2).build().expect("runtime");
    assert_eq!(
        rt.run_on(1, |i| async move { Ok((i, current_core())) })
            .expect("ran"),
        (1, Some(1))
    );
    let e = rt
        .run_on(2, |_| async move { Ok(()) })
        .expect_err("no core 2");
    assert_eq!(e.kind(), ErrorKind::Usage);
    assert!(e.to_string().contains("2 cores"), "{e}");
}

#[test]
fn zero_cores_is_a_config_error() {
    let e = Runtime::builder().cores(0).build().expect_err("zero cores");
    assert_eq!(e.kind(), ErrorKind::Config);
}

#[test]
fn errors_from_the_work_come_back_per_core() {
    let rt = Runtime::builder().cores(2).build().expect("runtime");
    let out = rt.run_on_all(|core| async move {
        let mut c = crate::conn().await?;
        if core == 0 {
            c.query_drop("SELECT * FROM no_such_table_anywhere").await?;
        }
        c.close().await?;
        Ok(core)
    });
    assert_eq!(
        out[0].as_ref().expect_err("server error").code(),
        Some(1146)
    );
    assert_eq!(*out[1].as_ref().expect("fine"), 1);
}

#[test]
fn blocking_on_the_runtime_from_its_own_core_is_refused() {
    let rt = Arc::new(Runtime::builder().cores(2).build().expect("runtime"));
    let inner = rt.clone();
    let nested = rt
        .run_on(0, move |_| async move {
            Ok(inner.run_on(1, |_| async { Ok(()) }))
        })
        .expect("outer ran");
    let e = nested.expect_err("nested run_on refused");
    assert_eq!(e.kind(), ErrorKind::Usage);
    assert!(e.to_string().contains("wait for itself"), "{e}");
}
