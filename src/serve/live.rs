//! Live reload: open preview pages keep an event stream open and reload
//! when a rebuild changed them, or show the build's error over the page.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use http_body_util::{Either, Full};
use hyper::header::{self, HeaderValue};
use hyper::Response;
use tokio::sync::{broadcast, mpsc};

/// The event stream's path; never a path in the output.
pub(super) const PATH: &str = "/__flashsale/live";

type Body = Either<Full<Bytes>, LiveBody>;

/// Only in the preview: a few lines that reload the page when it was rebuilt
/// and show build errors over it. Never part of the built output.
const LIVE_SCRIPT: &str = r#"<script>(function(){var es=window.flashsaleLive=new EventSource("/__flashsale/live");es.onmessage=function(e){var m=JSON.parse(e.data),o=document.getElementById("flashsale-error");if(m.error){if(!o){o=document.createElement("pre");o.id="flashsale-error";o.style.cssText="position:fixed;inset:auto 0 0 0;max-height:60vh;overflow:auto;margin:0;padding:1rem;background:#300;color:#fff;font:13px/1.4 monospace;z-index:99999;white-space:pre-wrap";document.body.appendChild(o)}o.textContent="flashsale: your last edit does not build; this page shows the previous build until it does.\n\n"+m.error;return}if(o||m.changed.indexOf("*")>=0||m.changed.indexOf(location.pathname)>=0)location.reload()}})();</script>"#;

/// The page with the live-reload script before `</body>`.
pub(super) fn inject(mut html: Vec<u8>) -> Vec<u8> {
    let at = memchr::memmem::rfind(&html, b"</body>").unwrap_or(html.len());
    html.splice(at..at, LIVE_SCRIPT.bytes());
    html
}

/// A server-sent event stream fed by a channel.
pub(super) struct LiveBody(mpsc::Receiver<Bytes>);

impl http_body::Body for LiveBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|m| m.map(|b| Ok(Frame::data(b))))
    }
}

/// A server-sent event stream of what `events` says changed, starting with
/// the current build error if there is one.
pub(super) fn stream(events: &broadcast::Sender<String>, failed: Option<String>) -> Response<Body> {
    let (tx, rx) = mpsc::channel(16);
    let mut events = events.subscribe();
    tokio::spawn(async move {
        if tx
            .send(Bytes::from_static(b"retry: 500\n\n"))
            .await
            .is_err()
        {
            return;
        }
        if let Some(error) = failed {
            let m = serde_json::json!({ "error": error });
            if tx
                .send(Bytes::from(format!("data: {m}\n\n")))
                .await
                .is_err()
            {
                return;
            }
        }
        loop {
            let msg = tokio::select! {
                m = events.recv() => m,
                // A comment line now and then notices closed connections.
                _ = tokio::time::sleep(Duration::from_secs(15)) => Ok(String::new()),
            };
            let frame = match msg {
                Ok(m) if m.is_empty() => Bytes::from_static(b": keep-alive\n\n"),
                Ok(m) => Bytes::from(format!("data: {m}\n\n")),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    Bytes::from_static(b"data: {\"changed\":[\"*\"]}\n\n")
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            if tx.send(frame).await.is_err() {
                return;
            }
        }
    });
    let mut r = Response::new(Either::Right(LiveBody(rx)));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_reload_goes_before_body_end() {
        let html = inject(b"<body><p>x</p></body></html>".to_vec());
        let s = String::from_utf8(html).unwrap();
        assert!(s.contains("</script></body>"), "{s}");
    }
}
