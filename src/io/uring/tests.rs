//! The loop's own tests, against real sockets on loopback (a plain std
//! thread plays the peer): tasks, timers, cross-thread wake-ups, receives
//! and sends, and the hard cases: cancellation, buffer-ring exhaustion,
//! receive back-pressure, large and slow sends, signals during the wait, a
//! tiny submission queue, a peer that resets, and every ring setup.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::socket::Socket;
use super::*;

fn rt(cfg: RingConfig) -> LocalRuntime {
    LocalRuntime::with_config(&cfg).expect("io_uring available")
}

/// A listener whose accepted connection is handed to `peer` on its own thread.
fn peer<F>(peer: F) -> (SocketAddr, thread::JoinHandle<()>)
where
    F: FnOnce(TcpStream) + Send + 'static,
{
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let h = thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        peer(s);
    });
    (addr, h)
}

async fn connect(addr: SocketAddr) -> Socket {
    Socket::connect_tcp(addr, |s| s.set_nodelay(true))
        .await
        .expect("connect")
}

/// Reads until `n` bytes arrived (or the end).
async fn recv_n(s: &mut Socket, n: usize) -> BytesMut {
    let mut got = BytesMut::new();
    while got.len() < n {
        if s.recv(&mut got).await.expect("recv") == 0 {
            break;
        }
    }
    got
}

/// Starts sending `out` (after any send in flight), without waiting for
/// its completion.
async fn start(s: &mut Socket, out: &mut Vec<u8>) {
    std::future::poll_fn(|cx| s.poll_start_write(cx, out))
        .await
        .expect("send");
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn tasks_run_and_join_and_panics_are_caught() {
    let rt = rt(RingConfig::default());
    let out = rt
        .block_on(async {
            let a = spawn(async { 1 + 1 });
            let b = spawn(async {
                yield_now().await;
                "two"
            });
            let c = spawn(async {
                if true {
                    panic!("boom");
                }
            });
            let e = c.await.unwrap_err();
            assert!(e.is_panic());
            assert!(e.to_string().contains("boom"), "{e}");
            (a.await.unwrap(), b.await.unwrap())
        })
        .unwrap();
    assert_eq!(out, (2, "two"));
}

#[test]
fn nesting_and_missing_runtimes_are_usage_errors() {
    let e = try_spawn(async {}).unwrap_err();
    assert_eq!(e.kind(), crate::ErrorKind::Usage);
    assert!(e.to_string().contains("Client"), "{e}");
    let rt1 = rt(RingConfig::default());
    let e = rt1
        .block_on(async { rt(RingConfig::default()).block_on(async {}) })
        .unwrap()
        .unwrap_err();
    assert_eq!(e.kind(), crate::ErrorKind::Usage);
    assert!(e.to_string().contains("cannot nest"), "{e}");
}

#[test]
fn timers_fire_in_order_and_timeouts_cancel() {
    let rt = rt(RingConfig::default());
    rt.block_on(async {
        let order = Rc::new(std::cell::RefCell::new(Vec::new()));
        let mut tasks = Vec::new();
        for (i, ms) in [30u64, 10, 20].into_iter().enumerate() {
            let order = order.clone();
            tasks.push(spawn(async move {
                sleep(Duration::from_millis(ms)).await;
                order.borrow_mut().push(i);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.borrow(), vec![1, 2, 0]);
        let t0 = Instant::now();
        let r = timeout(Duration::from_millis(20), sleep(Duration::from_secs(10))).await;
        assert!(r.is_err());
        assert!(t0.elapsed() < Duration::from_secs(2));
        assert_eq!(timeout(Duration::from_secs(5), async { 7 }).await, Ok(7));
    })
    .unwrap();
    // The cancelled 10 s timer is gone: nothing keeps the loop waiting.
    assert!(rt.core.timers.borrow().is_empty());
}

#[test]
fn other_threads_wake_tasks_and_send_jobs() {
    let rt = rt(RingConfig::default());
    let shared = rt.shared().clone();
    let v = rt
        .block_on(async move {
            // A wake-up from another thread, while the core sleeps in the kernel.
            let slow = spawn_blocking(|| {
                thread::sleep(Duration::from_millis(30));
                41
            })
            .await
            .unwrap();
            // A job from another thread.
            let (tx, rx) = mpsc::channel();
            let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(20));
                let ok = shared
                    .send_job(Box::new(move || {
                        spawn(async move {
                            tx.send(Core::current().is_ok()).unwrap();
                            done_tx.send(()).unwrap();
                        });
                    }))
                    .is_ok();
                assert!(ok);
            });
            let deadline = Instant::now() + Duration::from_secs(5);
            while done_rx.try_recv().is_err() && Instant::now() < deadline {
                sleep(Duration::from_millis(5)).await;
            }
            assert!(rx.recv().unwrap(), "the job ran on the core");
            slow + 1
        })
        .unwrap();
    assert_eq!(v, 42);
}

#[test]
fn echo_with_started_and_awaited_sends() {
    let (addr, h) = peer(|mut s| {
        let mut buf = [0u8; 4096];
        loop {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            s.write_all(&buf[..n]).unwrap();
        }
    });
    let rt = rt(RingConfig::default());
    rt.block_on(async {
        let mut s = connect(addr).await;
        for round in 0..50u32 {
            let msg = format!("ping {round}").into_bytes();
            let mut out = msg.clone();
            if round % 2 == 0 {
                start(&mut s, &mut out).await;
                assert!(out.is_empty(), "the socket keeps the bytes in flight");
            } else {
                s.send_all(&mut out).await.unwrap();
            }
            let got = recv_n(&mut s, msg.len()).await;
            assert_eq!(&got[..], &msg[..]);
        }
        let stats = stats().unwrap();
        assert_eq!(
            stats.recv_arms, 1,
            "one multishot receive for the whole exchange"
        );
        s.shutdown();
        let mut rest = BytesMut::new();
        assert_eq!(s.recv(&mut rest).await.unwrap(), 0, "end of stream");
    })
    .unwrap();
    h.join().unwrap();
}

#[test]
fn a_send_waits_its_turn_behind_one_in_flight() {
    let (addr, h) = peer(|mut s| {
        let mut got = vec![0u8; 6];
        s.read_exact(&mut got).unwrap();
        s.write_all(&got).unwrap();
        let _ = s.read(&mut [0u8; 1]);
    });
    let rt = rt(RingConfig::default());
    rt.block_on(async {
        let mut s = connect(addr).await;
        let mut first = b"abc".to_vec();
        s.start_send(&mut first).unwrap(); // its completion not seen yet
        let mut second = b"def".to_vec();
        assert!(
            s.start_send(&mut second).is_err(),
            "refused while the first is in flight: its bytes are the kernel's"
        );
        assert_eq!(second, b"def", "nothing was taken");
        start(&mut s, &mut second).await;
        assert_eq!(&recv_n(&mut s, 6).await[..], b"abcdef", "in order");
    })
    .unwrap();
    h.join().unwrap();
}

#[test]
fn a_dropped_receive_loses_nothing() {
    let (tx, rx) = mpsc::channel::<()>();
    let (addr, h) = peer(move |mut s| {
        rx.recv().unwrap();
        s.write_all(b"late bytes").unwrap();
        let _ = s.read(&mut [0u8; 1]);
    });
    let rt = rt(RingConfig::default());
    rt.block_on(async {
        let mut s = connect(addr).await;
        let mut buf = BytesMut::new();
        // Give up waiting: the receive future is dropped mid-wait.
        assert!(
            timeout(Duration::from_millis(30), s.recv(&mut buf))
                .await
                .is_err()
        );
        tx.send(()).unwrap();
        let got = recv_n(&mut s, 10).await;
        assert_eq!(&got[..], b"late bytes");
    })
    .unwrap();
    h.join().unwrap();
}

#[test]
fn a_dropped_operation_is_cancelled_in_the_kernel() {
    let rt = rt(RingConfig::default());
    rt.block_on(async {
        // A connect that cannot complete soon (unroutable address): the
        // timeout drops it, which cancels it in the kernel.
        let addr: SocketAddr = "10.255.255.1:9".parse().unwrap();
        let r = timeout(
            Duration::from_millis(50),
            Socket::connect_tcp(addr, |_| Ok(())),
        )
        .await;
        if r.is_ok() {
            return; // this network answered (or refused) at once: nothing to cancel
        }
        assert!(stats().unwrap().cancels >= 1);
        // Its completion arrives and frees the operation's memory.
        for _ in 0..100 {
            if Core::current().unwrap().reactor.borrow().ops_in_flight() == 0 {
                return;
            }
            sleep(Duration::from_millis(10)).await;
        }
        panic!("the cancelled operation never completed");
    })
    .unwrap();
}

#[test]
fn buffer_ring_exhaustion_rearms_and_loses_nothing() {
    let data = pattern(1 << 20);
    let sent = data.clone();
    let (addr, h) = peer(move |mut s| {
        s.write_all(&sent).unwrap();
        let _ = s.read(&mut [0u8; 1]);
    });
    // Two tiny buffers: the kernel runs out of them on every burst.
    let rt = rt(RingConfig {
        buffers: 2,
        buffer_size: 64,
        ..RingConfig::default()
    });
    rt.block_on(async {
        let mut s = connect(addr).await;
        sleep(Duration::from_millis(20)).await; // let the data pile up
        let got = recv_n(&mut s, data.len()).await;
        assert_eq!(got.len(), data.len());
        assert!(got[..] == data[..], "bytes arrive whole and in order");
        assert!(stats().unwrap().recv_nobufs > 0, "the ring did run dry");
    })
    .unwrap();
    h.join().unwrap();
}

#[test]
fn a_socket_nobody_reads_does_not_starve_the_others() {
    let data = pattern(256 * 1024);
    let sent = data.clone();
    let (flood, h1) = peer(move |mut s| {
        s.write_all(&sent).unwrap();
        let _ = s.read(&mut [0u8; 1]);
    });
    let (echo, h2) = peer(|mut s| {
        let mut buf = [0u8; 64];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => s.write_all(&buf[..n]).unwrap(),
            }
        }
    });
    // Four small buffers: at most two may sit in unread queues.
    let rt = rt(RingConfig {
        buffers: 4,
        buffer_size: 1024,
        ..RingConfig::default()
    });
    rt.block_on(async {
        let mut idle = connect(flood).await;
        let mut busy = connect(echo).await;
        let mut first = BytesMut::new();
        idle.recv(&mut first).await.unwrap(); // armed; then left unread
        for r in 0..50u32 {
            let msg = format!("still served {r}").into_bytes();
            let mut out = msg.clone();
            start(&mut busy, &mut out).await;
            assert_eq!(&recv_n(&mut busy, msg.len()).await[..], &msg[..]);
        }
        let rest = recv_n(&mut idle, data.len() - first.len()).await;
        first.extend_from_slice(&rest);
        assert!(first[..] == data[..], "the unread socket lost nothing");
    })
    .unwrap();
    h1.join().unwrap();
    h2.join().unwrap();
}

#[test]
fn a_full_inbox_pauses_the_receive_until_read() {
    let data = pattern(8 << 20);
    let sent = data.clone();
    let (addr, h) = peer(move |mut s| {
        s.write_all(&sent).unwrap();
        let _ = s.read(&mut [0u8; 1]);
    });
    // 16 x 4 KiB buffers: one dispatch can add at most 64 KiB before the
    // pause takes effect.
    const LIMIT: usize = 64 * 1024;
    let rt = rt(RingConfig {
        inbox_limit: LIMIT,
        buffers: 16,
        buffer_size: 4096,
        ..RingConfig::default()
    });
    rt.block_on(async {
        let mut s = connect(addr).await;
        let mut first = BytesMut::new();
        s.recv(&mut first).await.unwrap();
        sleep(Duration::from_millis(50)).await; // the peer keeps sending; we don't read
        let peak = Core::current()
            .unwrap()
            .reactor
            .borrow()
            .sock_unread(s.idx());
        assert!(
            peak < LIMIT + 2 * 16 * 4096,
            "the inbox stopped near its limit ({peak} bytes)"
        );
        let rest = recv_n(&mut s, data.len() - first.len()).await;
        first.extend_from_slice(&rest);
        assert!(first[..] == data[..]);
        assert!(
            stats().unwrap().recv_arms > 1,
            "the receive was paused and re-armed"
        );
    })
    .unwrap();
    h.join().unwrap();
}

#[test]
fn large_sends_to_a_slow_reader_arrive_whole() {
    let data = pattern(8 << 20);
    let expect = data.clone();
    let (addr, h) = peer(move |mut s| {
        let mut got = Vec::new();
        let mut buf = [0u8; 7000];
        while got.len() < expect.len() {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0);
            got.extend_from_slice(&buf[..n]);
            if got.len() % 7 == 0 {
                thread::sleep(Duration::from_micros(200));
            }
        }
        assert!(got == expect);
        s.write_all(b"ok").unwrap();
    });
    let rt = rt(RingConfig::default());
    rt.block_on(async {
        let mut s = Socket::connect_tcp(addr, |s| s.set_send_buffer_size(4096))
            .await
            .unwrap();
        let mut out = data.clone();
        s.send_all(&mut out).await.unwrap();
        assert!(out.is_empty());
        let got = recv_n(&mut s, 2).await;
        assert_eq!(&got[..], b"ok");
    })
    .unwrap();
    h.join().unwrap();
}

#[test]
fn signals_during_the_wait_do_not_break_the_loop() {
    extern "C" fn noop(_: libc::c_int) {}
    // SAFETY: installs a handler that does nothing, without SA_RESTART, so
    // the loop's io_uring_enter returns EINTR.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = noop as *const () as usize;
        libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
    }
    let (addr, h) = peer(|mut s| {
        thread::sleep(Duration::from_millis(150));
        s.write_all(b"after signals").unwrap();
        let _ = s.read(&mut [0u8; 1]);
    });
    // SAFETY: pthread_self has no preconditions.
    let me = unsafe { libc::pthread_self() } as usize;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let killer = thread::spawn(move || {
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            // SAFETY: the target thread is alive until `stop` is set.
            unsafe { libc::pthread_kill(me as libc::pthread_t, libc::SIGUSR1) };
            thread::sleep(Duration::from_millis(3));
        }
    });
    let rt = rt(RingConfig::default());
    rt.block_on(async {
        let t0 = Instant::now();
        sleep(Duration::from_millis(60)).await;
        assert!(t0.elapsed() >= Duration::from_millis(60));
        let mut s = connect(addr).await;
        let got = recv_n(&mut s, 13).await;
        assert_eq!(&got[..], b"after signals");
    })
    .unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    killer.join().unwrap();
    h.join().unwrap();
}

#[test]
fn a_tiny_submission_queue_still_carries_many_sockets() {
    const N: usize = 40;
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let server = thread::spawn(move || {
        let mut hs = Vec::new();
        for _ in 0..N {
            let (mut s, _) = l.accept().unwrap();
            hs.push(thread::spawn(move || {
                let mut buf = [0u8; 64];
                loop {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => s.write_all(&buf[..n]).unwrap(),
                    }
                }
            }));
        }
        for h in hs {
            h.join().unwrap();
        }
    });
    let rt = rt(RingConfig {
        entries: 4,
        fixed_files: 8, // fewer slots than sockets: the rest use plain fds
        ..RingConfig::default()
    });
    rt.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..N {
            tasks.push(spawn(async move {
                let mut s = connect(addr).await;
                for r in 0..20 {
                    let msg = format!("{i}:{r}").into_bytes();
                    let mut out = msg.clone();
                    start(&mut s, &mut out).await;
                    let got = recv_n(&mut s, msg.len()).await;
                    assert_eq!(&got[..], &msg[..]);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    })
    .unwrap();
    server.join().unwrap();
}

#[test]
fn a_peer_reset_is_an_error_not_a_hang() {
    let (addr, h) = peer(|s| {
        let s = socket2::Socket::from(s);
        s.set_linger(Some(Duration::ZERO)).unwrap();
        thread::sleep(Duration::from_millis(20));
        drop(s); // RST
    });
    let rt = rt(RingConfig::default());
    rt.block_on(async {
        let mut s = connect(addr).await;
        let mut buf = BytesMut::new();
        let e = s.recv(&mut buf).await.unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ECONNRESET), "{e}");
        let mut out = b"after reset".to_vec();
        assert!(s.send_all(&mut out).await.is_err());
    })
    .unwrap();
    h.join().unwrap();
}

#[test]
fn every_ring_setup_carries_an_exchange() {
    for setup in [
        RingSetup::Plain,
        RingSetup::CoopTaskrun,
        RingSetup::SingleIssuer,
        RingSetup::DeferTaskrun,
    ] {
        let (addr, h) = peer(|mut s| {
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).unwrap();
            s.write_all(&buf).unwrap();
        });
        let rt = rt(RingConfig {
            max_setup: setup,
            ..RingConfig::default()
        });
        assert!(rt.info().setup <= setup);
        rt.block_on(async {
            let mut s = connect(addr).await;
            let mut out = b"hello".to_vec();
            start(&mut s, &mut out).await;
            assert_eq!(&recv_n(&mut s, 5).await[..], b"hello");
        })
        .unwrap();
        h.join().unwrap();
    }
}

#[test]
fn sockets_and_tasks_outlive_one_block_on_but_not_the_runtime() {
    let (addr, h) = peer(|mut s| {
        let mut buf = [0u8; 3];
        s.read_exact(&mut buf).unwrap();
        s.write_all(&buf).unwrap();
        let _ = s.read(&mut buf);
    });
    let rt = rt(RingConfig::default());
    let mut s = rt.block_on(connect(addr)).unwrap();
    let mut out = b"abc".to_vec();
    // Outside block_on the loop is not running: a clear error, no hang.
    let e = s.start_send(&mut out).unwrap_err();
    assert!(e.to_string().contains("stopped"), "{e}");
    let got = rt
        .block_on(async {
            start(&mut s, &mut out).await;
            recv_n(&mut s, 3).await
        })
        .unwrap();
    assert_eq!(&got[..], b"abc");
    drop(s);
    drop(rt);
    h.join().unwrap();
}

#[test]
fn a_batched_wait_sleeps_until_a_reply_instead_of_waking_every_min_wait() {
    // Four connections wait for replies that come 60 ms later: the loop
    // waits for two completions at a time with a 200 µs min-wait. It must
    // sleep through the 60 ms (a handful of waits), not wake every min-wait
    // (~300 waits), which is what a min-wait without an overall timeout did.
    let cfg = RingConfig::default();
    assert!(
        cfg.batch_per > 0 && cfg.batch_per <= 2,
        "the test assumes batched waits"
    );
    let rt = rt(cfg);
    if !rt
        .block_on(async { ring_info().unwrap().min_wait })
        .unwrap()
    {
        eprintln!("skipped: this kernel has no min-wait (IORING_FEAT_MIN_TIMEOUT)");
        return;
    }
    let mut peers = Vec::new();
    let mut addrs = Vec::new();
    for _ in 0..4 {
        let (addr, h) = peer(|mut s| {
            let mut b = [0u8; 4];
            s.read_exact(&mut b).unwrap();
            thread::sleep(Duration::from_millis(60));
            s.write_all(b"pong").unwrap();
        });
        addrs.push(addr);
        peers.push(h);
    }
    let waits = rt
        .block_on(async move {
            let mut socks = Vec::new();
            for a in addrs {
                let mut s = connect(a).await;
                s.send_all(&mut b"ping".to_vec()).await.unwrap();
                socks.push(s);
            }
            let before = stats().unwrap().waits;
            let started = Instant::now();
            let tasks: Vec<_> = socks
                .into_iter()
                .map(|mut s| spawn(async move { recv_n(&mut s, 4).await }))
                .collect();
            for t in tasks {
                assert_eq!(&t.await.unwrap()[..], b"pong");
            }
            assert!(started.elapsed() >= Duration::from_millis(40));
            stats().unwrap().waits - before
        })
        .unwrap();
    for p in peers {
        p.join().unwrap();
    }
    assert!(
        waits <= 12,
        "the loop woke {waits} times while four replies were 60 ms away"
    );
}

/// A task queued when one `block_on` returns runs in the next one: its
/// wake-up is not lost with the run queue (it used to be cleared while the
/// task stayed marked as queued, so no later wake could queue it again).
#[test]
fn a_task_queued_when_block_on_returns_runs_in_the_next() {
    let rt = rt(RingConfig::default());
    let polls = Rc::new(std::cell::Cell::new(0u32));
    let p = polls.clone();
    rt.block_on(async move {
        spawn(async move {
            loop {
                p.set(p.get() + 1);
                yield_now().await;
            }
        });
        // Let it run a little, then return with it queued.
        for _ in 0..10 {
            yield_now().await;
        }
    })
    .unwrap();
    let after_first = polls.get();
    assert!(after_first > 0, "the task ran in the first block_on");
    rt.block_on(async {
        for _ in 0..10 {
            yield_now().await;
        }
    })
    .unwrap();
    assert!(
        polls.get() > after_first,
        "the task queued at the end of the first block_on never ran again ({} polls)",
        polls.get()
    );
}
