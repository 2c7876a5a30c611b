//! One shutdown signal: a stopped gate leaves no task running and its
//! journal directory free at once.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_gate_ends_every_task_and_frees_its_directory_at_once() {
    // Every kind of background task: forwarding (retrying a winner the order
    // system never takes: nothing listens there) and a fair start's draw
    // (waiting for the window's end, half a minute away).
    let f = Fixture::new(Setup {
        start_in: -1,
        extra: "fair_window = \"30s\"",
        forward: Some("http://127.0.0.1:9/orders".into()),
        ..Setup::default()
    })
    .await;
    assert!(f.gate.tasks() >= 2, "{} tasks", f.gate.tasks());
    // B is not in the draw's way once the window is over; A's entrant is held.
    let entrant = tokio::spawn({
        let (gate, path) = (f.gate.clone(), f.path());
        async move {
            let req = Request::post(path)
                .header("x-user-id", "held")
                .body(Full::new(Bytes::from_static(b"sku=A")))
                .unwrap();
            gate.handle(req, PEER.parse().unwrap()).await.status()
        }
    });
    let draw = f.gate.draw.as_ref().unwrap();
    crate::util::wait::wait_for("the entry", std::time::Duration::from_secs(5), || {
        draw.count() == 1
    })
    .await;

    let stopped = tokio::time::timeout(std::time::Duration::from_secs(5), f.gate.stop()).await;
    assert!(stopped.is_ok(), "stop did not return");
    assert_eq!(f.gate.tasks(), 0, "a background task outlived the gate");
    assert_eq!(
        entrant.await.unwrap(),
        StatusCode::SERVICE_UNAVAILABLE,
        "a held entrant is answered when the gate stops"
    );
    // The old gate is still referenced (as a connection task would), and a
    // new gate takes the directory all the same.
    let next = start(&f.journal, &f.key, &f.clock, Setup::default()).await;
    assert_eq!(next.id(), "g1");
    next.stop().await;
}
