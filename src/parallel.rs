//! The one scoped thread pool ess-guard uses, for the two places where work splits into
//! independent pieces: the documents of a large render (`manifest::par_map`) and the inputs of
//! `check` (`commands::check`).
//!
//! No pool crate: the pieces are few (at most a few hundred runs), scoped threads borrow the
//! input without `Arc`, and results come back in input order so output never depends on timing.

use std::sync::Mutex;

/// The number of worker threads to use: one per available CPU, capped at `max`.
pub fn workers(max: usize) -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(max))
}

/// Applies a job to every item on at most `workers` scoped threads and returns the results in
/// item order, as `items.into_iter().map(job).collect()` would.
///
/// `make_job(worker)` is called once per thread, so a job can keep per-thread state that need not
/// be `Send` (check keeps one state source per thread). Items are taken in order from a shared
/// queue, so a thread that finishes a cheap item takes the next one instead of idling; that is
/// what keeps threads busy when items differ in cost. A panicking job panics the caller once the
/// other threads have stopped.
pub fn ordered_map<I, T, F, J>(items: Vec<I>, workers: usize, make_job: F) -> Vec<T>
where
    I: Send,
    T: Send,
    F: Fn(usize) -> J + Sync,
    J: FnMut(I) -> T,
{
    let workers = workers.min(items.len());
    if workers <= 1 {
        return items.into_iter().map(make_job(0)).collect();
    }
    let queue = Mutex::new(items.into_iter().enumerate());
    let (queue, make_job) = (&queue, &make_job);
    let mut indexed: Vec<(usize, T)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|worker| {
                scope.spawn(move || {
                    let mut job = make_job(worker);
                    let mut done = Vec::new();
                    loop {
                        // A poisoned lock means another worker panicked; its panic is
                        // re-raised by the join below, so stop taking work.
                        let next = match queue.lock() {
                            Ok(mut queue) => queue.next(),
                            Err(_) => None,
                        };
                        let Some((position, item)) = next else {
                            return done;
                        };
                        done.push((position, job(item)));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    indexed.sort_unstable_by_key(|(position, _)| *position);
    indexed.into_iter().map(|(_, t)| t).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_item_order() {
        let items: Vec<usize> = (0..1000).collect();
        for workers in [0, 1, 2, 8] {
            let out = ordered_map(items.clone(), workers, |_| |i: usize| i * 2);
            assert_eq!(out, (0..1000).map(|i| i * 2).collect::<Vec<_>>());
        }
        assert!(ordered_map(Vec::<usize>::new(), 4, |_| |i: usize| i).is_empty());
    }

    #[test]
    fn each_thread_builds_its_own_job() {
        // The per-thread state is not shared: each job counts only the items it ran.
        let out = ordered_map((0..200).collect(), 4, |worker| {
            let mut seen = 0usize;
            move |i: usize| {
                seen += 1;
                (i, worker, seen)
            }
        });
        assert_eq!(out.len(), 200);
        assert!(out.iter().enumerate().all(|(k, (i, _, _))| k == *i));
        let total: usize = (0..4)
            .map(|w| {
                out.iter()
                    .filter(|(_, wk, _)| *wk == w)
                    .map(|(_, _, s)| *s)
                    .max()
                    .unwrap_or(0)
            })
            .sum();
        assert_eq!(
            total, 200,
            "the per-worker counters add up to the item count"
        );
    }

    #[test]
    #[should_panic(expected = "job failed")]
    fn a_panicking_job_panics_the_caller() {
        ordered_map((0..100).collect(), 2, |_| {
            |i: usize| {
                if i == 57 {
                    panic!("job failed");
                }
                i
            }
        });
    }
}
