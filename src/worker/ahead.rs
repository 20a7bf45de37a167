//! The next Range window, asked for ahead of the current one's end (Firefox).

use super::*;

/// The next Range window of a transfer, asked for before the current one's body has
/// ended: where it starts, and its answer, which a task of its own awaits (a request
/// is sent only when its future runs). If the transfer ends without taking it, its
/// body is let go once the answer arrives.
pub(super) struct Ahead {
    pub(super) at: u64,
    slot: Rc<RefCell<AheadSlot>>,
}

#[derive(Default)]
pub(super) struct AheadSlot {
    answer: Option<Result<web_sys::Response, NetFailure>>,
    waker: Option<std::task::Waker>,
    abandoned: bool,
}

impl Ahead {
    /// Send the request for window `next` ([`Engine::window_after`]), with the
    /// transfer's `headers` and abort signal.
    pub(super) fn ask(
        req: &FetchRequest,
        headers: &[(String, String)],
        next: NextWindow,
        ctl: &AbortController,
    ) -> Ahead {
        let NextWindow {
            at,
            range,
            if_range,
        } = next;
        let window = [("range".into(), range), ("if-range".into(), if_range)];
        let headers = merge_headers(headers, &window);
        let slot = Rc::new(RefCell::new(AheadSlot::default()));
        let (to, url, stall_ms, ctl) = (slot.clone(), req.url.clone(), req.stall_ms, ctl.clone());
        spawn_local(async move {
            let answer = net::send("GET", &url, &headers, None, stall_ms, &ctl).await;
            let mut to = to.borrow_mut();
            if to.abandoned {
                if let Ok(resp) = &answer {
                    net::drop_body(resp);
                }
                return;
            }
            to.answer = Some(answer);
            if let Some(w) = to.waker.take() {
                w.wake();
            }
        });
        Ahead { at, slot }
    }

    /// The answer, once it has arrived.
    pub(super) async fn answer(&self) -> Result<web_sys::Response, NetFailure> {
        std::future::poll_fn(|cx| {
            let mut slot = self.slot.borrow_mut();
            match slot.answer.take() {
                Some(a) => std::task::Poll::Ready(a),
                None => {
                    slot.waker = Some(cx.waker().clone());
                    std::task::Poll::Pending
                }
            }
        })
        .await
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        let mut slot = self.slot.borrow_mut();
        slot.abandoned = true;
        if let Some(Ok(resp)) = slot.answer.take() {
            net::drop_body(&resp);
        }
    }
}

/// Take the window asked for ahead: the reader of its body if the engine takes its
/// head, `None` if not (the body is dropped).
pub(super) async fn next_window(
    rt: &Rc<Runtime>,
    req: &FetchRequest,
    next: &Ahead,
) -> Result<Option<BodyReader>, NetFailure> {
    let resp = next.answer().await?;
    let head = net::head(&resp);
    let fits =
        rt.engine
            .borrow_mut()
            .handle_window_head(&req.task, req.gen, next.at, &head, js::now());
    if !fits {
        net::drop_body(&resp);
        return Ok(None);
    }
    Ok(BodyReader::new(&resp))
}
