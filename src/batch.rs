//! [`Batch`]: run many jobs sharded over cores, K connections per core.
//!
//! Every connection pulls its next item as soon as it is free, from one shared
//! index across all cores (an atomic increment per *item*, not per query): no
//! batch barrier, and a slow item holds up only its own connection. Results
//! come back per item, in input order.
//!
//! ```no_run
//! use mysql_uring::runtime::Runtime;
//! use mysql_uring::{Batch, Connection};
//!
//! # fn main() -> mysql_uring::Result<()> {
//! let rt = Runtime::builder().cores(2).build()?;
//! let tables: Vec<String> = (0..100).map(|i| format!("t{i}")).collect();
//! let results = Batch::new("mysql://root@127.0.0.1:3306/test")?
//!     .connections_per_core(4)
//!     .stop_on_error(true)
//!     .on_progress(|p| eprint!("\r{}/{}", p.done, p.total))
//!     .run(&rt, tables, async |cnx: &mut Connection, name: String| {
//!         cnx.query_drop(&format!("CREATE TABLE {name} (id INT)")).await?;
//!         Ok(name.len())
//!     });
//! for r in results {
//!     r?;
//! }
//! # Ok(()) }
//! ```

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::conn::Connection;
use crate::error::{Error, ErrorKind, Result};
use crate::opts::{IntoOpts, Opts};
use crate::runtime::Runtime;

/// Where a batch is, passed to the [`Batch::on_progress`] hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Items finished (successfully or not).
    pub done: usize,
    /// Items finished with an error.
    pub failed: usize,
    /// Items in the batch.
    pub total: usize,
}

type ProgressHook = Arc<dyn Fn(Progress) + Send + Sync>;

/// A sharded batch runner; see the [module docs](self).
#[derive(Clone)]
pub struct Batch {
    opts: Opts,
    per_core: usize,
    stop_on_error: bool,
    progress: Option<ProgressHook>,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("opts", &self.opts)
            .field("per_core", &self.per_core)
            .field("stop_on_error", &self.stop_on_error)
            .finish()
    }
}

/// One mutex per item, each taken once: only the worker that claimed the
/// index touches it, so it is never contended.
struct Shared<I, R> {
    items: Box<[Mutex<Option<I>>]>,
    results: Box<[Mutex<Option<Result<R>>>]>,
    next: AtomicUsize,
    stop: AtomicBool,
    done: AtomicUsize,
    failed: AtomicUsize,
    /// Why items may be left: the first failed item (with stop_on_error), or
    /// the first connection that could not be opened.
    stopped_by: Mutex<Option<String>>,
    connect_error: Mutex<Option<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Nothing panics while holding these locks; recover the data regardless.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Batch {
    /// A runner connecting with `opts` (an [`Opts`] or a URL); 1 connection per core.
    pub fn new(opts: impl IntoOpts) -> Result<Batch> {
        Ok(Batch {
            opts: opts.into_opts()?,
            per_core: 1,
            stop_on_error: false,
            progress: None,
        })
    }

    /// Connections (K) per core, each working through items one at a time.
    /// At most as many connections as items are opened. Values below 1 mean 1.
    pub fn connections_per_core(mut self, k: usize) -> Self {
        self.per_core = k.max(1);
        self
    }

    /// Stop taking new items after the first error: items in flight finish,
    /// items not started get an [`ErrorKind::NotRun`] error. Default false
    /// (every item is run).
    pub fn stop_on_error(mut self, stop: bool) -> Self {
        self.stop_on_error = stop;
        self
    }

    /// Called after each item finishes, on the core that ran it (so keep it
    /// quick; it may run on several cores at once).
    pub fn on_progress(mut self, hook: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(hook));
        self
    }

    /// Runs `job(connection, item)` for every item over all of `rt`'s cores
    /// and waits for them. Result `i` is item `i`'s: the job's result or
    /// error, [`ErrorKind::Usage`] if the job panicked (naming the item), or
    /// [`ErrorKind::NotRun`] with the reason if it never ran.
    ///
    /// A connection the job left broken is replaced before the next item. A
    /// worker that cannot open a connection stops; the others carry on, and
    /// only when none can, the remaining items are not run.
    ///
    /// Blocks the calling thread until every item is done (see
    /// [`Runtime::run_on_all`]); a job that never finishes holds the batch, so
    /// bound statements with the options' `query_timeout`.
    pub fn run<I, R, F>(&self, rt: &Runtime, items: Vec<I>, job: F) -> Vec<Result<R>>
    where
        I: Send + 'static,
        R: Send + 'static,
        F: AsyncFn(&mut Connection, I) -> Result<R> + Send + Sync + 'static,
    {
        let total = items.len();
        let shared = Arc::new(Shared {
            results: (0..total).map(|_| Mutex::new(None)).collect(),
            items: items.into_iter().map(|i| Mutex::new(Some(i))).collect(),
            next: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            done: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            stopped_by: Mutex::new(None),
            connect_error: Mutex::new(None),
        });
        let cores = rt.cores();
        let workers = total.min(cores.saturating_mul(self.per_core));
        let job = Arc::new(job);
        let core_errors = if workers == 0 {
            Vec::new()
        } else {
            let (shared, me) = (shared.clone(), self.clone());
            rt.run_on_all(move |core| {
                // Spread the workers: the first `workers % cores` cores get one more.
                let mine = workers / cores + usize::from(core < workers % cores);
                me.run_core(shared, job, mine)
            })
        };
        let why_left = {
            let stopped = lock(&shared.stopped_by).clone();
            let connect = lock(&shared.connect_error).clone();
            let core = core_errors
                .iter()
                .find_map(|r| r.as_ref().err().map(|e| e.to_string()));
            match (stopped, connect, core) {
                (Some(s), _, _) => format!("the batch stopped after {s} (stop_on_error)"),
                (None, Some(c), _) => format!("no connection could be opened: {c}"),
                (None, None, Some(c)) => format!("a core failed: {c}"),
                (None, None, None) => "every worker stopped before reaching it".to_string(),
            }
        };
        let mut shared = match Arc::try_unwrap(shared) {
            Ok(s) => s,
            // The cores are done with it; a clone can only linger in a task
            // the job leaked. Take the results out through the locks then.
            Err(arc) => {
                return (0..total)
                    .map(|i| {
                        lock(&arc.results[i])
                            .take()
                            .unwrap_or_else(|| Err(not_run(i, &why_left)))
                    })
                    .collect();
            }
        };
        std::mem::take(&mut shared.results)
            .into_vec()
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                r.into_inner()
                    .unwrap_or_else(|e| e.into_inner())
                    .unwrap_or_else(|| Err(not_run(i, &why_left)))
            })
            .collect()
    }

    /// One core's share: `workers` connections pulling items until none are left.
    async fn run_core<I, R, F>(
        self,
        shared: Arc<Shared<I, R>>,
        job: Arc<F>,
        workers: usize,
    ) -> Result<()>
    where
        I: Send + 'static,
        R: Send + 'static,
        F: AsyncFn(&mut Connection, I) -> Result<R> + Send + Sync + 'static,
    {
        let me = Rc::new(self);
        let mut tasks = Vec::with_capacity(workers);
        for _ in 0..workers {
            let in_flight = Rc::new(Cell::new(None::<usize>));
            let task = crate::io::uring::spawn(worker(
                me.clone(),
                shared.clone(),
                job.clone(),
                in_flight.clone(),
            ));
            tasks.push((task, in_flight));
        }
        for (task, in_flight) in tasks {
            if let Err(e) = task.await {
                if let Some(i) = in_flight.get() {
                    let msg = if e.is_panic() {
                        crate::io::uring::exec::panic_message(&*e.into_panic())
                    } else {
                        "the task was cancelled".to_string()
                    };
                    let err = Error::usage(format!("the job for item {i} panicked: {msg}"));
                    me.finish(&shared, i, Err(err));
                }
            }
        }
        Ok(())
    }

    /// Records item `i`'s result and reports progress.
    fn finish<I, R>(&self, shared: &Shared<I, R>, i: usize, r: Result<R>) {
        let failed = if let Err(e) = &r {
            if self.stop_on_error && !shared.stop.swap(true, Ordering::Relaxed) {
                *lock(&shared.stopped_by) = Some(format!("item {i} failed: {e}"));
            }
            shared.failed.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            shared.failed.load(Ordering::Relaxed)
        };
        *lock(&shared.results[i]) = Some(r);
        let done = shared.done.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(hook) = &self.progress {
            hook(Progress {
                done,
                failed,
                total: shared.items.len(),
            });
        }
    }
}

/// One connection's loop: connect (again, if the last item broke it), claim
/// the next item, run it, record it.
async fn worker<I, R, F>(
    me: Rc<Batch>,
    shared: Arc<Shared<I, R>>,
    job: Arc<F>,
    in_flight: Rc<Cell<Option<usize>>>,
) where
    F: AsyncFn(&mut Connection, I) -> Result<R>,
{
    let mut conn: Option<Connection> = None;
    loop {
        if shared.stop.load(Ordering::Relaxed)
            || shared.next.load(Ordering::Relaxed) >= shared.items.len()
        {
            break;
        }
        // Connect before claiming, so a failed connect leaves the item to others.
        let c = match conn.take() {
            Some(c) if !c.is_broken() => c,
            _ => match Connection::connect(&me.opts).await {
                Ok(c) => c,
                Err(e) => {
                    lock(&shared.connect_error).get_or_insert_with(|| e.to_string());
                    break;
                }
            },
        };
        let c = conn.insert(c);
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        let Some(item) = shared.items.get(i).and_then(|m| lock(m).take()) else {
            break;
        };
        in_flight.set(Some(i));
        let r = job(c, item).await;
        in_flight.set(None);
        me.finish(&shared, i, r);
    }
    if let Some(c) = conn {
        let _ = c.close().await;
    }
}

fn not_run(i: usize, why: &str) -> Error {
    Error::new(ErrorKind::NotRun, format!("item {i} was not run: {why}"))
}
