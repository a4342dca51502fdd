//! The bounded inference pool: at most `max_inflight` detections run at once on
//! blocking threads, at most `queue_depth` more wait, and anything beyond is refused at
//! once, so latency under overload stays bounded instead of piling up.

use std::sync::Arc;

use tokio::sync::Semaphore;

use super::errors::ApiError;
use crate::detector::Detector;

pub struct Pool {
    detector: Arc<Detector>,
    admitted: Arc<Semaphore>,
    running: Arc<Semaphore>,
    capacity: usize,
}

impl Pool {
    pub fn new(detector: Detector, max_inflight: usize, queue_depth: usize) -> Pool {
        Pool {
            detector: Arc::new(detector),
            admitted: Arc::new(Semaphore::new(max_inflight + queue_depth)),
            running: Arc::new(Semaphore::new(max_inflight)),
            capacity: max_inflight + queue_depth,
        }
    }

    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    /// Requests admitted and not yet finished (running or queued).
    pub fn in_flight(&self) -> usize {
        self.capacity - self.admitted.available_permits()
    }

    /// Runs `job` on a blocking thread once a slot is free; 503 straight away when the
    /// queue is full.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Detector) -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let Ok(_admitted) = self.admitted.clone().try_acquire_owned() else {
            return Err(ApiError::overloaded(format!(
                "{} requests are already running or queued; try again shortly",
                self.capacity
            )));
        };
        let running = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let detector = self.detector.clone();
        tokio::task::spawn_blocking(move || {
            let _running = running;
            job(&detector)
        })
        .await
        .map_err(|e| ApiError::internal(format!("detection task failed: {e}")))
    }
}
