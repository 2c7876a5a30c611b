//! One shutdown signal for a server's background tasks, as mini-redis has
//! it: every task is spawned through [`Shutdown::spawn`], which races it
//! against the signal, and [`Shutdown::stop`] gives the signal and waits until
//! every task has ended. A stopped server leaves nothing running.

use std::future::Future;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The signal and the tasks that end at it. Clones share both.
#[derive(Clone, Default)]
pub(crate) struct Shutdown {
    signal: CancellationToken,
    tasks: TaskTracker,
}

impl Shutdown {
    /// Runs `task` until it ends or the signal is given, whichever is first.
    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let signal = self.signal.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                _ = signal.cancelled() => {}
                _ = task => {}
            }
        });
    }

    /// Gives the signal and waits until every task has ended.
    pub(crate) async fn stop(&self) {
        self.signal.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }

    /// Tasks still running.
    pub(crate) fn running(&self) -> usize {
        self.tasks.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stop_ends_every_task_even_one_that_never_ends_by_itself() {
        let s = Shutdown::default();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        s.spawn(async move {
            let _keep = tx; // dropped when the task ends
            std::future::pending::<()>().await
        });
        s.spawn(async {});
        tokio::task::yield_now().await;
        assert_eq!(s.running(), 1);
        assert!(!s.signal.is_cancelled());
        s.stop().await;
        assert_eq!(s.running(), 0);
        assert!(s.signal.is_cancelled());
        assert!(rx.await.is_err(), "the endless task was dropped");
    }
}
