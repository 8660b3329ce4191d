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

/// A sharded batch runner.
///
/// [`Batch`]: run many jobs sharded over cores, K connections per core.
///
/// Every connection pulls its next item as soon as it is free, from one shared
/// index across all cores (an atomic increment per *item*, not per query): no
/// batch barrier, and a slow item holds up only its own connection. Results
/// come back per item, in input order.
///
/// **Shards**: [`Batch::sharded`] takes one set of options per shard (each a
/// server, or a host list with its own failover) and
/// [`Batch::run_sharded`] a key function; every item runs on its shard,
/// with K connections per core to each shard, each shard's items pulled
/// from their own index.
///
/// ```no_run
/// use mysql_uring::runtime::Runtime;
/// use mysql_uring::{Batch, Connection};
///
/// # fn main() -> mysql_uring::Result<()> {
/// let rt = Runtime::builder().cores(2).build()?;
/// let tables: Vec<String> = (0..100).map(|i| format!("t{i}")).collect();
/// let results = Batch::new("mysql://root@127.0.0.1:3306/test")?
///     .connections_per_core(4)
///     .stop_on_error(true)
///     .on_progress(|p| eprint!("\r{}/{}", p.done, p.total))
///     .run(&rt, tables, async |cnx: &mut Connection, name: String| {
///         cnx.query_drop(&format!("CREATE TABLE {name} (id INT)")).await?;
///         Ok(name.len())
///     });
/// for r in results {
///     r?;
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Batch {
    /// One per shard (one for an unsharded batch).
    shards: Arc<[Opts]>,
    per_core: usize,
    stop_on_error: bool,
    progress: Option<ProgressHook>,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("shards", &self.shards)
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
    /// Per shard: its items (indices into `items`) and the next to claim.
    queues: Box<[Queue]>,
    stop: AtomicBool,
    done: AtomicUsize,
    failed: AtomicUsize,
    /// Why items may be left: the first failed item (with stop_on_error), or
    /// the first connection that could not be opened.
    stopped_by: Mutex<Option<String>>,
    /// Per shard: the first connection that could not be opened.
    connect_error: Box<[Mutex<Option<String>>]>,
}

/// One shard's items and where its workers are in them.
struct Queue {
    items: Vec<usize>,
    next: AtomicUsize,
}

impl Queue {
    fn exhausted(&self) -> bool {
        self.next.load(Ordering::Relaxed) >= self.items.len()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Nothing panics while holding these locks; recover the data regardless.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Batch {
    /// A runner connecting with `opts` (an [`Opts`] or a URL); 1 connection per core.
    pub fn new(opts: impl IntoOpts) -> Result<Batch> {
        Ok(Batch {
            shards: Arc::from(vec![opts.into_opts()?]),
            per_core: 1,
            stop_on_error: false,
            progress: None,
        })
    }

    /// A runner over several shards, one set of options (a URL, or
    /// [`Opts`], possibly with several hosts) per shard, for
    /// [`Batch::run_sharded`]. [`Batch::run`] on it uses the first shard.
    ///
    /// ```no_run
    /// use mysql_uring::runtime::Runtime;
    /// use mysql_uring::{Batch, Connection};
    ///
    /// # fn main() -> mysql_uring::Result<()> {
    /// let rt = Runtime::new()?;
    /// let users: Vec<u64> = (1..=1000).collect();
    /// let results = Batch::sharded(["mysql://app@db-a/users", "mysql://app@db-b/users"])?
    ///     .connections_per_core(4)
    ///     .run_sharded(&rt, users, |id| (*id % 2) as usize, async |c: &mut Connection, id: u64| {
    ///         c.exec_drop("UPDATE users SET seen = NOW() WHERE id = ?", (id,)).await
    ///     });
    /// # Ok(()) }
    /// ```
    pub fn sharded<O: IntoOpts>(shards: impl IntoIterator<Item = O>) -> Result<Batch> {
        let shards = shards
            .into_iter()
            .map(IntoOpts::into_opts)
            .collect::<Result<Vec<_>>>()?;
        if shards.is_empty() {
            return Err(Error::config("a sharded batch needs at least one shard"));
        }
        Ok(Batch {
            shards: Arc::from(shards),
            per_core: 1,
            stop_on_error: false,
            progress: None,
        })
    }

    /// How many shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
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
        let all = (0..items.len()).collect();
        let mut queues = vec![all];
        queues.extend((1..self.shards.len()).map(|_| Vec::new()));
        self.run_queues(rt, items, queues, Vec::new(), job)
    }

    /// Like [`Batch::run`], each item on the shard `shard_of(&item)` picks
    /// (an index into the shards given to [`Batch::sharded`]): K connections
    /// per core to every shard that has items, each shard's items pulled
    /// from their own index. An item whose shard index is out of range gets a
    /// [`ErrorKind::Usage`] error; a shard no connection can be opened to
    /// leaves its items [`ErrorKind::NotRun`], naming the shard, while the
    /// others run.
    pub fn run_sharded<I, R, K, F>(
        &self,
        rt: &Runtime,
        items: Vec<I>,
        shard_of: K,
        job: F,
    ) -> Vec<Result<R>>
    where
        I: Send + 'static,
        R: Send + 'static,
        K: Fn(&I) -> usize,
        F: AsyncFn(&mut Connection, I) -> Result<R> + Send + Sync + 'static,
    {
        let n = self.shards.len();
        let mut queues: Vec<Vec<usize>> = (0..n).map(|_| Vec::new()).collect();
        let mut bad = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let s = shard_of(item);
            match queues.get_mut(s) {
                Some(q) => q.push(i),
                None => bad.push((
                    i,
                    Error::usage(format!(
                        "shard_of returned {s} for item {i}, but the batch has {n} shard(s)"
                    )),
                )),
            }
        }
        self.run_queues(rt, items, queues, bad, job)
    }

    fn run_queues<I, R, F>(
        &self,
        rt: &Runtime,
        items: Vec<I>,
        queues: Vec<Vec<usize>>,
        early: Vec<(usize, Error)>,
        job: F,
    ) -> Vec<Result<R>>
    where
        I: Send + 'static,
        R: Send + 'static,
        F: AsyncFn(&mut Connection, I) -> Result<R> + Send + Sync + 'static,
    {
        let total = items.len();
        let results: Box<[Mutex<Option<Result<R>>>]> =
            (0..total).map(|_| Mutex::new(None)).collect();
        for (i, e) in early {
            *lock(&results[i]) = Some(Err(e));
        }
        let shared = Arc::new(Shared {
            results,
            items: items.into_iter().map(|i| Mutex::new(Some(i))).collect(),
            queues: queues
                .into_iter()
                .map(|items| Queue {
                    items,
                    next: AtomicUsize::new(0),
                })
                .collect(),
            stop: AtomicBool::new(false),
            done: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            stopped_by: Mutex::new(None),
            connect_error: (0..self.shards.len()).map(|_| Mutex::new(None)).collect(),
        });
        let cores = rt.cores();
        // Per shard: at most as many workers as items, K per core.
        let workers: Vec<usize> = shared
            .queues
            .iter()
            .map(|q| q.items.len().min(cores.saturating_mul(self.per_core)))
            .collect();
        let job = Arc::new(job);
        let core_errors = if workers.iter().all(|&w| w == 0) {
            Vec::new()
        } else {
            let (shared, me, workers) = (shared.clone(), self.clone(), workers.clone());
            rt.run_on_all(move |core| {
                // Spread each shard's workers: the first `w % cores` cores get one more.
                let mine: Vec<usize> = workers
                    .iter()
                    .map(|&w| w / cores + usize::from(core < w % cores))
                    .collect();
                me.run_core(shared, job, mine)
            })
        };
        let core_error = core_errors
            .iter()
            .find_map(|r| r.as_ref().err().map(|e| e.to_string()));
        let stopped = lock(&shared.stopped_by).clone();
        let why_left = |shard: usize| {
            let connect = lock(&shared.connect_error[shard]).clone();
            let name = if self.shards.len() > 1 {
                format!(" to shard {shard} ({})", self.shards[shard].address())
            } else {
                String::new()
            };
            match (&stopped, connect, &core_error) {
                (Some(s), _, _) => format!("the batch stopped after {s} (stop_on_error)"),
                (None, Some(c), _) => format!("no connection{name} could be opened: {c}"),
                (None, None, Some(c)) => format!("a core failed: {c}"),
                (None, None, None) => "every worker stopped before reaching it".to_string(),
            }
        };
        let mut shard_of = vec![0usize; total];
        for (s, q) in shared.queues.iter().enumerate() {
            for &i in &q.items {
                shard_of[i] = s;
            }
        }
        (0..total)
            .map(|i| {
                lock(&shared.results[i])
                    .take()
                    .unwrap_or_else(|| Err(not_run(i, &why_left(shard_of[i]))))
            })
            .collect()
    }

    /// One core's share: `workers[s]` connections to shard `s`, each pulling
    /// that shard's items until none are left.
    async fn run_core<I, R, F>(
        self,
        shared: Arc<Shared<I, R>>,
        job: Arc<F>,
        workers: Vec<usize>,
    ) -> Result<()>
    where
        I: Send + 'static,
        R: Send + 'static,
        F: AsyncFn(&mut Connection, I) -> Result<R> + Send + Sync + 'static,
    {
        let me = Rc::new(self);
        let mut tasks = Vec::with_capacity(workers.iter().sum());
        for (shard, &n) in workers.iter().enumerate() {
            for _ in 0..n {
                let in_flight = Rc::new(Cell::new(None::<usize>));
                let task = crate::io::uring::spawn(worker(
                    me.clone(),
                    shard,
                    shared.clone(),
                    job.clone(),
                    in_flight.clone(),
                ));
                tasks.push((task, in_flight));
            }
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

/// One connection's loop on its shard: connect (again, if the last item
/// broke it), claim the shard's next item, run it, record it.
async fn worker<I, R, F>(
    me: Rc<Batch>,
    shard: usize,
    shared: Arc<Shared<I, R>>,
    job: Arc<F>,
    in_flight: Rc<Cell<Option<usize>>>,
) where
    F: AsyncFn(&mut Connection, I) -> Result<R>,
{
    let queue = &shared.queues[shard];
    let mut conn: Option<Connection> = None;
    loop {
        if shared.stop.load(Ordering::Relaxed) || queue.exhausted() {
            break;
        }
        // Connect before claiming, so a failed connect leaves the item to others.
        let c = match conn.take() {
            Some(c) if !c.is_broken() => c,
            _ => match Connection::connect(&me.shards[shard]).await {
                Ok(c) => c,
                Err(e) => {
                    lock(&shared.connect_error[shard]).get_or_insert_with(|| e.to_string());
                    break;
                }
            },
        };
        let c = conn.insert(c);
        let k = queue.next.fetch_add(1, Ordering::Relaxed);
        let Some(&i) = queue.items.get(k) else {
            break;
        };
        let Some(item) = lock(&shared.items[i]).take() else {
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
