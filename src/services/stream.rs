//! The plumbing of a running stream that both services share: a session [`split`] into the
//! state of the sending half ([`Outgoing`]) and the receiving half as the service's typed
//! events ([`Incoming`]), and the methods every stream type and half offers on top
//! ([`session_accessors!`], [`duplex_methods!`]).

use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use futures_util::StreamExt;

use crate::proto::clock::Clock;
use crate::proto::codec::Message;
use crate::services::EventError;
use crate::transport::{
    self, ErrorKind, OffsetLearned, Session, SessionSink, SessionStats, SessionStream,
};

/// What the sending half keeps besides its sink: the session id, the session's clock, and
/// whether the stream was ended, after which nothing more may be sent.
pub(crate) struct Outgoing {
    session_id: String,
    clock: Clock,
    finished: bool,
    /// The error text for sending after the end, in the service's words.
    closed: &'static str,
}

impl Outgoing {
    fn new(session_id: String, clock: Clock, closed: &'static str) -> Self {
        Outgoing {
            session_id,
            clock,
            finished: false,
            closed,
        }
    }

    pub(crate) fn session_id(&self) -> &str {
        &self.session_id
    }

    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.finished
    }

    /// Marks the stream ended; false when it already was, as ending twice must do nothing.
    pub(crate) fn end(&mut self) -> bool {
        !std::mem::replace(&mut self.finished, true)
    }

    /// Refuses to send once the stream was ended.
    pub(crate) fn check_open(&self) -> Result<(), transport::Error> {
        if self.finished {
            return Err(transport::Error::new(ErrorKind::Closed, self.closed));
        }
        Ok(())
    }
}

/// Splits a new session into what its two halves start from: the sink, the sending state and
/// the incoming events, decoded with `decode`. `closed` is the error text for sending after
/// the end.
pub(crate) fn split<Event, Error>(
    session: Session,
    session_id: String,
    closed: &'static str,
    decode: fn(&Message) -> Result<Event, EventError>,
) -> (SessionSink, Outgoing, Incoming<Event, Error>) {
    let clock = session.clock().clone();
    let (sink, stream) = session.split();
    let outgoing = Outgoing::new(session_id.clone(), clock, closed);
    (sink, outgoing, Incoming::new(stream, session_id, decode))
}

/// The receiving half of a session as a service's events: each message decoded (an exception
/// becomes the service's error), transport errors as the service's error too, and nothing more
/// once the connection has closed.
pub(crate) struct Incoming<Event, Error> {
    stream: SessionStream,
    session_id: String,
    decode: fn(&Message) -> Result<Event, EventError>,
    ended: bool,
    _error: PhantomData<fn() -> Error>,
}

impl<Event, Error> Incoming<Event, Error> {
    fn new(
        stream: SessionStream,
        session_id: String,
        decode: fn(&Message) -> Result<Event, EventError>,
    ) -> Self {
        Incoming {
            stream,
            session_id,
            decode,
            ended: false,
            _error: PhantomData,
        }
    }

    pub(crate) fn session_id(&self) -> &str {
        &self.session_id
    }

    pub(crate) fn stats(&self) -> SessionStats {
        self.stream.stats()
    }

    pub(crate) fn offsets_learned(&self) -> Vec<OffsetLearned> {
        self.stream.offsets_learned()
    }

    /// `Debug` of the receiver type `name`, ready for the receiver's own fields.
    pub(crate) fn debug_struct<'a, 'b>(
        &self,
        f: &'a mut fmt::Formatter<'b>,
        name: &str,
    ) -> fmt::DebugStruct<'a, 'b> {
        let mut debug = f.debug_struct(name);
        debug
            .field("session_id", &self.session_id)
            .field("ended", &self.ended)
            .field("stats", &self.stats());
        debug
    }
}

impl<Event, Error> Stream for Incoming<Event, Error>
where
    Error: From<EventError> + From<transport::Error>,
{
    type Item = Result<Event, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match self.stream.poll_next_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                self.ended = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Ok(message))) => {
                Poll::Ready(Some((self.decode)(&message).map_err(Error::from)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error.into()))),
        }
    }
}

/// Public methods that describe a stream's session, each read from the same-named method of
/// the field `$from`: `session_id`, `is_finished`, `stats`, `offsets_learned`, `clock`.
macro_rules! session_accessors {
    ($from:ident: $($method:ident),+ $(,)?) => {
        $($crate::services::stream::session_accessors!(@ $from $method);)+
    };
    (@ $from:ident session_id) => {
        /// The session id sent to the service.
        pub fn session_id(&self) -> &str {
            self.$from.session_id()
        }
    };
    (@ $from:ident is_finished) => {
        /// Whether [`finish`](Self::finish) (or [`disconnect`](Self::disconnect)) was called.
        pub fn is_finished(&self) -> bool {
            self.$from.is_finished()
        }
    };
    (@ $from:ident stats) => {
        /// Counters of the underlying session.
        pub fn stats(&self) -> $crate::transport::SessionStats {
            self.$from.stats()
        }
    };
    (@ $from:ident offsets_learned) => {
        /// Clock corrections made while connecting or streaming.
        pub fn offsets_learned(&self) -> Vec<$crate::transport::OffsetLearned> {
            self.$from.offsets_learned()
        }
    };
    (@ $from:ident clock) => {
        /// The session's (skew-corrected) clock.
        pub fn clock(&self) -> &$crate::proto::clock::Clock {
            self.$from.clock()
        }
    };
}

/// The methods of a stream type made of a `sender: $sender` and a `receiver: $receiver` half
/// that hand over to them: `finish`, `next_event` and `split`.
macro_rules! duplex_methods {
    ($sender:ident, $receiver:ident, $event:ty, $error:ty) => {
        #[doc = concat!("Ends the sending side (see [`", stringify!($sender), "::finish`]); then read the remaining events.")]
        pub async fn finish(&mut self) -> Result<(), $error> {
            self.sender.finish().await
        }

        #[doc = concat!("The next event, `None` once the connection is closed (see [`", stringify!($receiver), "::next_event`]).")]
        pub async fn next_event(&mut self) -> Option<Result<$event, $error>> {
            self.receiver.next_event().await
        }

        /// Splits into a sending and a receiving half.
        pub fn split(self) -> ($sender, $receiver) {
            (self.sender, self.receiver)
        }
    };
}

pub(crate) use {duplex_methods, session_accessors};
