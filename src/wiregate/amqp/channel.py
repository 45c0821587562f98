"""One AMQP channel: its methods, content assembly, consumers, unacked
deliveries, publisher confirms and transactions.

Methods raise ``AMQPError``; the connection turns a soft one into
channel.close and a hard one into connection.close.  Semantics and texts
follow RabbitMQ 3.10's ``rabbit_channel``.
"""

from __future__ import annotations

import base64
import os
import struct
from typing import TYPE_CHECKING, Any, Callable

from pamqp import commands

from wiregate.core import CoreError, Entry, Message, Queue
from wiregate.core.arguments import validate_consumer_arguments

from . import codec, properties, wire
from .properties import PropertyBlock
from .replies import (
    NOT_FOUND,
    NOT_IMPLEMENTED,
    NOT_ALLOWED,
    PRECONDITION_FAILED,
    ACCESS_REFUSED,
    COMMAND_INVALID,
    NO_ROUTE,
    AMQPError,
    channel_error,
    connection_error,
)

if TYPE_CHECKING:
    from .connection import AMQPConnection

_publish_head = struct.Struct(">H")
_ack_args = struct.Struct(">QB")
_content_header = struct.Struct(">HHQ")
_deliver_tail = struct.Struct(">QB")
#: frame end of the method frame, then the content header frame's head
_deliver_content = struct.Struct(">BBHIHHQ")
#: frame end of the content header frame, then the body frame's head
_body_head = struct.Struct(">BBHI")

#: RabbitMQ's default max_message_size (3.10): 128 MiB
MAX_MESSAGE_SIZE = 134217728
#: property blocks up to this size are shared by the messages of one
#: connection that carry the same bytes (most publishers repeat theirs)
_SHARED_BLOCK_MAX = 512


def _generated_tag() -> str:
    return "amq.ctag-" + base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")


class ChannelConsumer:
    """A basic.consume subscription; the core calls it to deliver."""

    __slots__ = ("channel", "tag", "queue", "ack_required", "exclusive", "prefetch", "priority", "unacked", "arguments", "_tag_frame", "_deliver_prefix", "_content_heads")

    def __init__(
        self,
        channel: "Channel",
        tag: str,
        queue: Queue | None,
        *,
        ack_required: bool,
        exclusive: bool,
        prefetch: int,
        arguments: dict[str, Any],
    ) -> None:
        self.channel = channel
        self.tag = tag
        #: None for the direct reply-to pseudo-queue
        self.queue = queue
        self.ack_required = ack_required
        self.exclusive = exclusive
        self.prefetch = prefetch
        priority = arguments.get("x-priority", 0)
        self.priority = int(priority) if isinstance(priority, int) else 0
        self.unacked = 0
        self.arguments = arguments
        self._tag_frame = wire.shortstr(tag)
        #: basic.deliver's frame head, method index and consumer tag, and the
        #: encoded exchange and routing key, by (exchange, routing key): their
        #: length sets the frame size
        self._deliver_prefix: dict[tuple[str, str], tuple[bytes, bytes]] = {}
        #: (property bytes, body size, content header frame head, body frame
        #: head) of the last delivery (see deliver)
        self._content_heads: tuple[Any, int, bytes, bytes] = (None, -1, b"", b"")

    def has_credit(self) -> bool:
        if not self.ack_required:
            return True
        if self.prefetch and self.unacked >= self.prefetch:
            return False
        channel = self.channel
        return not channel.global_prefetch or channel.consumer_unacked < channel.global_prefetch

    def deliver(self, queue: Queue, entry: Entry) -> None:
        channel = self.channel
        channel.next_tag += 1
        tag = channel.next_tag
        if self.ack_required:
            channel.unacked[tag] = (queue, entry, self)
            self.unacked += 1
            channel.consumer_unacked += 1
        message = entry.message
        block: PropertyBlock = message.properties
        conn = channel.conn
        raw = block.raw
        if queue is not None and queue.queue_type != "classic":
            annotations = queue.annotations(entry)
            if annotations:
                raw = block.annotated(annotations)
        body = message.body  # read once: a paged-out body comes from disk
        size = len(body)
        number = channel.number
        if size > conn.frame_max - wire.FRAME_OVERHEAD or not size:
            exchange_rk = properties.exchange_rk(message.exchange, message.routing_key)
            head = wire.basic_deliver_head(number, self._tag_frame, tag, entry.redelivered, exchange_rk)
            conn.send_parts([head, *wire.content(number, size, raw, body, conn.frame_max)])
            return
        # the usual case, written out: basic.deliver, the content header and
        # one body frame, in as few pieces as the variable parts allow
        key = (message.exchange, message.routing_key)
        cached = self._deliver_prefix.get(key)
        if cached is None:
            if len(self._deliver_prefix) >= 64:
                self._deliver_prefix.clear()
            exchange_rk = properties.exchange_rk(*key)
            cached = self._deliver_prefix[key] = (wire.deliver_prefix(number, self._tag_frame, exchange_rk), exchange_rk)
        prefix, exchange_rk = cached
        heads = self._content_heads
        if heads[0] is not raw or heads[1] != size:
            # consecutive deliveries mostly share their property block and
            # often their size: the two frame heads are packed once for them
            heads = self._content_heads = (
                raw,
                size,
                _deliver_content.pack(0xCE, 2, number, 12 + len(raw), 60, 0, size),
                _body_head.pack(0xCE, 3, number, size),
            )
        out = conn._out
        wake = not out and not conn._in_receive
        out.extend((prefix, _deliver_tail.pack(tag, 1 if entry.redelivered else 0), exchange_rk, heads[2], raw, heads[3], body, b"\xce"))
        if wake:
            conn.on_wake()

    def deliver_reply(self, message: Message) -> None:
        """Direct reply-to: a message for this channel, bypassing any queue."""
        self.deliver(None, Entry(0, message))  # type: ignore[arg-type]

    def cancelled_by_server(self, queue: Queue) -> None:
        channel = self.channel
        channel.consumers.pop(self.tag, None)
        if channel.state == "open" and channel.conn.capabilities.get("consumer_cancel_notify"):
            channel.conn.send(wire.basic_cancel(channel.number, self.tag))


class Channel:
    """State of one open channel."""

    def __init__(self, conn: "AMQPConnection", number: int) -> None:
        self.conn = conn
        self.number = number
        self.state = "open"  # open | closing
        self.consumers: dict[str, ChannelConsumer] = {}
        #: delivery tag -> (queue, entry, consumer or None for basic.get)
        self.unacked: dict[int, tuple[Queue, Entry, ChannelConsumer | None]] = {}
        self.next_tag = 0
        self.prefetch = 0
        self.global_prefetch = 0
        self.consumer_unacked = 0
        self.confirm = False
        self.publish_seq = 0
        self.tx: list[tuple[str, Any]] | None = None
        self.last_queue: str | None = None
        self.reply_consumer: ReplyConsumer | None = None
        #: a fault rule nacks the message being published (see amqp/faults.py)
        self.fault_nack = False
        # content assembly
        self._publish: tuple[str, str, bool] | None = None
        self._publish_index = wire.BASIC_PUBLISH
        self._expect = "method"  # method | header | body
        self._remaining = 0
        self._properties: bytes = b""
        self._chunks: list[bytes] = []
        self._handlers: dict[int, Callable[[Any], None]] = {
            wire.index(20, 10): self._channel_open,
            wire.CHANNEL_FLOW: self._channel_flow,
            wire.index(40, 10): self._exchange_declare,
            wire.index(40, 20): self._exchange_delete,
            wire.index(40, 30): self._exchange_bind,
            wire.index(40, 40): self._exchange_unbind,
            wire.index(50, 10): self._queue_declare,
            wire.index(50, 20): self._queue_bind,
            wire.index(50, 30): self._queue_purge,
            wire.index(50, 40): self._queue_delete,
            wire.index(50, 50): self._queue_unbind,
            wire.index(60, 10): self._basic_qos,
            wire.index(60, 20): self._basic_consume,
            wire.index(60, 30): self._basic_cancel,
            wire.index(60, 70): self._basic_get,
            wire.index(60, 90): self._basic_reject,
            wire.index(60, 100): self._basic_recover_async,
            wire.index(60, 110): self._basic_recover,
            wire.BASIC_NACK: self._basic_nack,
            wire.index(90, 10): self._tx_select,
            wire.index(90, 20): self._tx_commit,
            wire.index(90, 30): self._tx_rollback,
            wire.index(85, 10): self._confirm_select,
        }

    @property
    def vhost(self):
        return self.conn.vhost

    def reply(self, method_index: int, args: bytes = b"") -> None:
        self.conn.send(wire.method(self.number, method_index, args))

    # ------------------------------------------------------------ frames
    def handle_method(self, method_index: int, payload: bytes) -> None:
        if self.state == "closing":
            # RabbitMQ ignores everything but close/close-ok on a closing channel
            if method_index == wire.CHANNEL_CLOSE_OK:
                self.conn.release_channel(self.number)
            elif method_index == wire.CHANNEL_CLOSE:
                self.reply(wire.CHANNEL_CLOSE_OK)
            return
        if self._expect != "method":
            what = "content header for class 60" if self._expect == "header" else "content body"
            detail = f"expected {what}, got non content {'header' if self._expect == 'header' else 'body'} frame instead"
            raise connection_error(505, detail, self._publish_index)
        if method_index == wire.BASIC_PUBLISH:
            self._basic_publish(payload)
            return
        if method_index == wire.BASIC_ACK:
            if len(payload) < 13:
                raise connection_error(501, "cannot decode basic.ack", method_index)
            tag, bits = _ack_args.unpack_from(payload, 4)
            self._ack(tag, bool(bits & 1), method_index)
            return
        if method_index == wire.CHANNEL_CLOSE:
            self.conn.close_channel_by_client(self)
            return
        if method_index == wire.CHANNEL_CLOSE_OK:
            return
        handler = self._handlers.get(method_index)
        frame = self.conn.decode_method(method_index, payload)
        if handler is None:
            raise connection_error(COMMAND_INVALID, "unimplemented method", method_index)
        try:
            handler(frame)
        except CoreError as error:
            raise AMQPError.from_core(error, method_index) from None

    def handle_header(self, payload: bytes) -> None:
        if self.state == "closing":
            return
        if self._expect != "header":
            if self._expect == "method":
                raise connection_error(505, "expected method frame, got non method frame instead", 0)
            raise connection_error(505, "expected content body, got non content body frame instead", self._publish_index)
        if len(payload) < 14:
            raise connection_error(501, "cannot decode content header", self._publish_index)
        class_id, _weight, body_size = _content_header.unpack_from(payload, 0)
        if class_id != 60:
            raise connection_error(505, f"expected content header for class 60, got one for class {class_id} instead", self._publish_index)
        if body_size > MAX_MESSAGE_SIZE:
            self._expect = "method"
            self._publish = None
            raise channel_error(
                PRECONDITION_FAILED,
                f"message size {body_size} is larger than configured max size {MAX_MESSAGE_SIZE}",
                self._publish_index,
            )
        self._properties = payload[12:]
        self._remaining = body_size
        self._chunks = []
        if body_size == 0:
            self._complete_publish()
        else:
            self._expect = "body"

    def handle_body(self, payload: bytes) -> None:
        if self.state == "closing":
            return
        if self._expect != "body":
            if self._expect == "method":
                raise connection_error(505, "expected method frame, got non method frame instead", 0)
            raise connection_error(505, "expected content header for class 60, got non content header frame instead", self._publish_index)
        self._remaining -= len(payload)
        if self._remaining < 0:
            raise connection_error(501, "content body larger than the size its header announced", self._publish_index)
        self._chunks.append(payload)
        if self._remaining == 0:
            self._complete_publish()

    # ------------------------------------------------------------ publish
    def _basic_publish(self, payload: bytes) -> None:
        try:
            pos = 6  # index (4) + ticket (2)
            n = payload[pos]
            exchange = payload[pos + 1 : pos + 1 + n].decode("utf-8")
            pos += 1 + n
            n = payload[pos]
            routing_key = payload[pos + 1 : pos + 1 + n].decode("utf-8")
            pos += 1 + n
            bits = payload[pos]
        except (IndexError, UnicodeDecodeError):
            raise connection_error(501, "cannot decode basic.publish", wire.BASIC_PUBLISH) from None
        if bits & 2:
            # RabbitMQ 3.x dropped `immediate`
            raise connection_error(NOT_IMPLEMENTED, "immediate=true", wire.BASIC_PUBLISH)
        self._publish = (exchange, routing_key, bool(bits & 1))
        self._expect = "header"
        if self.conn.broker.blocked_reason is not None:
            self.conn.publishing()

    def _complete_publish(self) -> None:
        chunks = self._chunks
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._chunks = []
        publish = self._publish
        self._publish = None
        self._expect = "method"
        self.publish_message(publish, self._properties, body)  # type: ignore[arg-type]

    def publish_message(self, publish: tuple[str, str, bool], raw: bytes, body: bytes) -> None:
        """A whole message published on this channel: basic.publish's
        (exchange, routing key, mandatory), the content properties as
        received, the body."""
        exchange_name, routing_key, mandatory = publish
        blocks = self.conn.property_blocks
        block = blocks.get(raw)
        if block is None:
            block = PropertyBlock(raw)
            if len(raw) <= _SHARED_BLOCK_MAX:
                if len(blocks) >= 256:
                    blocks.clear()
                blocks[raw] = block
        vhost = self.conn.vhost
        exchange = vhost.exchanges.get(exchange_name)
        if exchange is None:
            raise channel_error(NOT_FOUND, f"no exchange '{exchange_name}' in vhost '{vhost.name}'", wire.BASIC_PUBLISH)
        if exchange.internal:
            raise channel_error(ACCESS_REFUSED, f"cannot publish to internal exchange '{exchange_name}' in vhost '{vhost.name}'", wire.BASIC_PUBLISH)
        expiration = None
        routing_keys = None
        if block.flags != 0:
            try:
                if block.has_user_id:
                    user_id = block.get("user_id")
                    if user_id != self.conn.user:
                        raise channel_error(
                            PRECONDITION_FAILED,
                            f"user_id property set to '{user_id}' but authenticated user was '{self.conn.user}'",
                            wire.BASIC_PUBLISH,
                        )
                if block.has_expiration:
                    expiration = _parse_expiration(block.get("expiration"))
                if block.has_reply_to and block.get("reply_to") == REPLY_TO:
                    block = self._direct_reply_block(block)
                if block.flags & properties.HEADERS and (b"\x02CC" in block.raw or b"\x03BCC" in block.raw):
                    block, routing_keys = _sender_selected(block, routing_key)
            except codec.DecodeError:
                raise connection_error(502, "cannot decode content header", wire.BASIC_PUBLISH) from None
            message = Message(
                exchange_name,
                routing_key,
                body,
                block,
                persistent=block.persistent,
                priority=block.priority,
                expiration=expiration,
                routing_keys=routing_keys,
                decode_headers=block.headers,
            )
        else:
            message = Message(exchange_name, routing_key, body, block)
        if self.confirm:
            self.publish_seq += 1
        if self.fault_nack:
            self.fault_nack = False
            if self.confirm:
                self.conn.send(wire.basic_nack(self.number, self.publish_seq, False))
            return
        if self.tx is not None:
            self.tx.append(("publish", (exchange, routing_key, mandatory, message)))
            return
        persistence = self.conn.broker.persistence
        if persistence is None:
            accepted = self._route(exchange, routing_key, mandatory, message)
            if self.confirm:
                self.conn.send((wire.basic_ack if accepted else wire.basic_nack)(self.number, self.publish_seq, False))
            return
        before = persistence.sequence
        accepted = self._route(exchange, routing_key, mandatory, message)
        if self.confirm:
            self._send_when_durable(before, (wire.basic_ack if accepted else wire.basic_nack)(self.number, self.publish_seq, False))

    def _send_when_durable(self, before: int, data: bytes) -> None:
        """Send ``data`` once what was written since ``before`` is durable (--fsync policy).

        A confirm for a persistent message in a durable queue, or a
        tx.commit-ok, goes out only then, as RabbitMQ confirms after its
        fsync; with nothing written it goes out at once.
        """
        persistence = self.conn.broker.persistence
        sequence = persistence.sequence
        if sequence == before or sequence <= persistence.synced:
            self.conn.send(data)
            return

        def send() -> None:
            if self.conn.channels.get(self.number) is self and self.state == "open":
                self.conn.send(data)

        persistence.when_synced(sequence, send)

    def _route(self, exchange: Any, routing_key: str, mandatory: bool, message: Message) -> bool:
        """Deliver to every queue reached; False when a queue refused it (overflow)."""
        vhost = self.conn.vhost
        keys = message.routing_keys
        if not exchange.name and len(keys) == 1:
            # the default exchange: the queue of that name, if any
            queue = vhost.queues.get(routing_key)
            if queue is not None:
                return queue.enqueue(message)
        if len(keys) == 1:
            queues = vhost.route(exchange, routing_key, message)
        else:
            queues = []
            for key in keys:
                for queue in vhost.route(exchange, key, message):
                    if queue not in queues:
                        queues.append(queue)
        if not queues and exchange.name == "" and routing_key.startswith(REPLY_TO_PREFIX):
            consumer = self.vhost.reply_consumers.get(routing_key)
            if consumer is not None:
                consumer.deliver_reply(message)
                return True
        if not queues:
            if mandatory:
                block: PropertyBlock = message.properties
                self.conn.send_parts(
                    [
                        wire.basic_return_head(self.number, NO_ROUTE, "NO_ROUTE", message.exchange, routing_key),
                        *wire.content(self.number, len(message.body), block.raw, message.body, self.conn.frame_max),
                    ]
                )
            return True
        accepted = True
        for queue in queues:
            if not queue.enqueue(message):
                accepted = False
        return accepted

    def _direct_reply_block(self, block: PropertyBlock) -> PropertyBlock:
        """Rewrite reply_to to this channel's reply address (direct reply-to)."""
        if self.reply_consumer is None:
            raise channel_error(PRECONDITION_FAILED, "fast reply consumer does not exist", wire.BASIC_PUBLISH)
        return block.replaced(reply_to=self.reply_consumer.tag_address)

    # ---------------------------------------------------------------- acks
    def _take_acked(self, tag: int, multiple: bool, method_index: int) -> list[tuple[int, tuple[Queue, Entry, ChannelConsumer | None]]]:
        unacked = self.unacked
        if multiple and tag == 0:
            taken = list(unacked.items())
            unacked.clear()
            return taken
        if tag not in unacked:
            raise channel_error(PRECONDITION_FAILED, f"unknown delivery tag {tag}", method_index)
        if not multiple:
            return [(tag, unacked.pop(tag))]
        taken = []
        for item in unacked.items():  # tags in delivery order: stop at the first past ``tag``
            if item[0] > tag:
                break
            taken.append(item)
        for t, _value in taken:
            del unacked[t]
        return taken

    def _ack(self, tag: int, multiple: bool, method_index: int) -> None:
        taken = self._take_acked(tag, multiple, method_index)
        if self.tx is not None:
            self.tx.append(("ack", taken))
            return
        self._settle(taken)

    def _release_credit(self, taken: list) -> bool:
        freed = False
        for _tag, (_queue, _entry, consumer) in taken:
            if consumer is not None:
                consumer.unacked -= 1
                self.consumer_unacked -= 1
                freed = True
        return freed

    def _settle(self, taken: list) -> None:
        by_queue: dict[Queue, list[Entry]] = {}
        for _tag, (queue, entry, _consumer) in taken:
            by_queue.setdefault(queue, []).append(entry)
        for queue, entries in by_queue.items():
            queue.settle(entries)
        if self._release_credit(taken):
            self._redispatch()

    def _requeue(self, taken: list) -> None:
        self._return_to_queues(taken, requeue=True)

    def _return_to_queues(self, taken: list, *, requeue: bool) -> None:
        """Give unsettled deliveries back, per queue: requeued, or rejected
        (dead-lettered where the queue says so)."""
        self._release_credit(taken)
        by_queue: dict[Queue, list[Entry]] = {}
        for _tag, (queue, entry, _consumer) in taken:
            by_queue.setdefault(queue, []).append(entry)
        for queue, entries in by_queue.items():
            if requeue:
                queue.requeue(entries)
            else:
                queue.reject(entries)
        self._redispatch()

    def _redispatch(self) -> None:
        for queue in {c.queue for c in self.consumers.values()}:
            if queue is not None and queue.pending():
                queue.dispatch()

    def _reject_taken(self, taken: list, requeue: bool) -> None:
        self._return_to_queues(taken, requeue=requeue)

    def _basic_reject(self, frame: commands.Basic.Reject) -> None:
        taken = self._take_acked(frame.delivery_tag, False, wire.index(60, 90))
        if self.tx is not None:
            self.tx.append(("reject", (taken, frame.requeue)))
            return
        self._reject_taken(taken, frame.requeue)

    def _basic_nack(self, frame: commands.Basic.Nack) -> None:
        taken = self._take_acked(frame.delivery_tag, frame.multiple, wire.BASIC_NACK)
        if self.tx is not None:
            self.tx.append(("reject", (taken, frame.requeue)))
            return
        self._reject_taken(taken, frame.requeue)

    def _basic_recover(self, frame: commands.Basic.Recover) -> None:
        self._recover(frame.requeue, wire.index(60, 110))
        self.reply(wire.BASIC_RECOVER_OK)

    def _basic_recover_async(self, frame: commands.Basic.RecoverAsync) -> None:
        self._recover(frame.requeue, wire.index(60, 100))

    def _recover(self, requeue: bool, method_index: int) -> None:
        if not requeue:
            raise connection_error(NOT_IMPLEMENTED, "requeue=false", method_index)
        taken = list(self.unacked.items())
        self.unacked.clear()
        self._requeue(taken)

    # ---------------------------------------------------------------- channel
    def _channel_open(self, frame: Any) -> None:
        raise connection_error(504, "second 'channel.open' seen", wire.index(20, 10))

    def _channel_flow(self, frame: commands.Channel.Flow) -> None:
        if not frame.active:
            raise connection_error(NOT_IMPLEMENTED, "active=false", wire.CHANNEL_FLOW)
        self.reply(wire.CHANNEL_FLOW_OK, b"\x01")

    def release(self) -> None:
        """Cancel every consumer and requeue every unacked delivery."""
        consumers = list(self.consumers.values())
        self.consumers.clear()
        for consumer in consumers:
            self._forget_consumer(consumer)
        taken = list(self.unacked.items())
        self.unacked.clear()
        if taken:
            self._requeue(taken)
        self.tx = None
        self._expect = "method"
        self._chunks = []

    # ------------------------------------------------------------ exchanges
    def _exchange_declare(self, frame: commands.Exchange.Declare) -> None:
        self.vhost.declare_exchange(
            frame.exchange,
            frame.exchange_type,
            passive=frame.passive,
            durable=frame.durable,
            auto_delete=frame.auto_delete,
            internal=frame.internal,
            arguments=frame.arguments,
        )
        if not frame.nowait:
            self.reply(wire.EXCHANGE_DECLARE_OK)

    def _exchange_delete(self, frame: commands.Exchange.Delete) -> None:
        self.vhost.delete_exchange(frame.exchange, if_unused=frame.if_unused)
        if not frame.nowait:
            self.reply(wire.EXCHANGE_DELETE_OK)

    def _exchange_bind(self, frame: commands.Exchange.Bind) -> None:
        self.vhost.bind_exchange(frame.destination, frame.source, frame.routing_key, frame.arguments)
        if not frame.nowait:
            self.reply(wire.EXCHANGE_BIND_OK)

    def _exchange_unbind(self, frame: commands.Exchange.Unbind) -> None:
        self.vhost.unbind_exchange(frame.destination, frame.source, frame.routing_key, frame.arguments)
        if not frame.nowait:
            self.reply(wire.EXCHANGE_UNBIND_OK)

    # --------------------------------------------------------------- queues
    def _queue_name(self, name: str, method_index: int) -> str:
        """RabbitMQ's shortcut: an empty name means the last queue declared here."""
        if name:
            return name
        if self.last_queue is None:
            raise channel_error(NOT_FOUND, "no previously declared queue", method_index)
        return self.last_queue

    def _queue_declare(self, frame: commands.Queue.Declare) -> None:
        if frame.passive and frame.queue.startswith(REPLY_TO_PREFIX):
            # a direct reply-to address looks like a queue with one consumer
            if frame.queue not in self.vhost.reply_consumers:
                raise channel_error(NOT_FOUND, f"no queue '{frame.queue}' in vhost '{self.vhost.name}'", wire.index(50, 10))
            if not frame.nowait:
                self.conn.send(wire.queue_declare_ok(self.number, frame.queue, 0, 1))
            return
        queue = self.vhost.declare_queue(
            frame.queue,
            owner=self.conn,
            passive=frame.passive,
            durable=frame.durable,
            exclusive=frame.exclusive,
            auto_delete=frame.auto_delete,
            arguments=frame.arguments,
        )
        self.last_queue = queue.name
        if not frame.nowait:
            self.conn.send(wire.queue_declare_ok(self.number, queue.name, queue.message_count, queue.consumer_count))

    def _queue_bind(self, frame: commands.Queue.Bind) -> None:
        name = self._queue_name(frame.queue, wire.index(50, 20))
        routing_key = frame.routing_key
        if not frame.queue and not routing_key:
            routing_key = name
        self.vhost.bind_queue(name, frame.exchange, routing_key, frame.arguments, owner=self.conn)
        if not frame.nowait:
            self.reply(wire.QUEUE_BIND_OK)

    def _queue_unbind(self, frame: commands.Queue.Unbind) -> None:
        name = self._queue_name(frame.queue, wire.index(50, 50))
        routing_key = frame.routing_key
        if not frame.queue and not routing_key:
            routing_key = name
        self.vhost.unbind_queue(name, frame.exchange, routing_key, frame.arguments, owner=self.conn)
        self.reply(wire.QUEUE_UNBIND_OK)

    def _queue_purge(self, frame: commands.Queue.Purge) -> None:
        name = self._queue_name(frame.queue, wire.index(50, 30))
        count = self.vhost.get_queue(name, self.conn).purge()
        if not frame.nowait:
            self.conn.send(wire.count_reply(self.number, wire.QUEUE_PURGE_OK, count))

    def _queue_delete(self, frame: commands.Queue.Delete) -> None:
        name = self._queue_name(frame.queue, wire.index(50, 40))
        vhost = self.vhost
        queue = vhost.queues.get(name)
        if queue is None:
            if not frame.nowait:
                self.conn.send(wire.count_reply(self.number, wire.QUEUE_DELETE_OK, 0))
            return
        vhost.check_exclusive_access(queue, self.conn)
        vhost.check_delete_queue(queue, if_unused=frame.if_unused, if_empty=frame.if_empty)
        # delete-ok goes out before the basic.cancel of this channel's own
        # consumers, in RabbitMQ's order
        if not frame.nowait:
            # a stream reports 0, as RabbitMQ's stream queue type does
            count = 0 if queue.queue_type == "stream" else queue.message_count
            self.conn.send(wire.count_reply(self.number, wire.QUEUE_DELETE_OK, count))
        vhost.delete_queue(queue)

    # ---------------------------------------------------------------- basic
    def _basic_qos(self, frame: commands.Basic.Qos) -> None:
        if frame.prefetch_size:
            raise connection_error(NOT_IMPLEMENTED, f"prefetch_size!=0 ({frame.prefetch_size})", wire.index(60, 10))
        if frame.global_:
            self.global_prefetch = frame.prefetch_count
        else:
            # rabbit_channel calls unlimit_prefetch here: a per-consumer qos
            # lifts the channel-wide limit (RabbitMQ 3.10 behaviour)
            self.prefetch = frame.prefetch_count
            self.global_prefetch = 0
        self.reply(wire.BASIC_QOS_OK)
        self._redispatch()

    def _basic_consume(self, frame: commands.Basic.Consume) -> None:
        method_index = wire.index(60, 20)
        if frame.queue == REPLY_TO:
            self._consume_replies(frame)
            return
        name = self._queue_name(frame.queue, method_index)
        queue = self.vhost.get_queue(name, self.conn)
        tag = frame.consumer_tag or _generated_tag()
        if tag in self.consumers:
            raise connection_error(NOT_ALLOWED, f"attempt to reuse consumer tag '{tag}'", method_index)
        validate_consumer_arguments(frame.arguments or {}, queue.describe())
        if queue.queue_type == "stream":
            if frame.no_ack:
                raise connection_error(
                    NOT_IMPLEMENTED, f"automatic acknowledgement not supported by stream queues {queue.describe()}", method_index
                )
            if not self.prefetch:
                raise channel_error(PRECONDITION_FAILED, f"consumer prefetch count is not set for '{queue.describe()}'", method_index)
            queue.start_offset((frame.arguments or {}).get("x-stream-offset"))
        queue.check_can_consume(frame.exclusive)
        consumer = ChannelConsumer(
            self,
            tag,
            queue,
            ack_required=not frame.no_ack,
            exclusive=frame.exclusive,
            prefetch=self.prefetch,
            arguments=frame.arguments or {},
        )
        self.consumers[tag] = consumer
        if not frame.nowait:
            self.conn.send(wire.tag_reply(self.number, wire.BASIC_CONSUME_OK, tag))
        queue.add_consumer(consumer)

    def _consume_replies(self, frame: commands.Basic.Consume) -> None:
        """basic.consume on amq.rabbitmq.reply-to (RabbitMQ's direct reply-to)."""
        method_index = wire.index(60, 20)
        if not frame.no_ack:
            raise channel_error(PRECONDITION_FAILED, "reply consumer cannot acknowledge", method_index)
        if self.reply_consumer is not None:
            raise channel_error(PRECONDITION_FAILED, "reply consumer already set", method_index)
        tag = frame.consumer_tag or _generated_tag()
        if tag in self.consumers:
            raise connection_error(NOT_ALLOWED, f"attempt to reuse consumer tag '{tag}'", method_index)
        consumer = ReplyConsumer(self, tag, None, ack_required=False, exclusive=False, prefetch=0, arguments={})
        # shaped like RabbitMQ's "<encoded channel>.<random key>", both base64
        channel_id = base64.b64encode(f"{self.conn.name}/{self.number}".encode()).decode()
        consumer.tag_address = f"{REPLY_TO_PREFIX}{channel_id}.{base64.b64encode(os.urandom(16)).decode()}"
        self.reply_consumer = consumer
        self.consumers[tag] = consumer
        self.vhost.reply_consumers[consumer.tag_address] = consumer
        if not frame.nowait:
            self.conn.send(wire.tag_reply(self.number, wire.BASIC_CONSUME_OK, tag))

    def _forget_consumer(self, consumer: ChannelConsumer) -> None:
        if consumer.queue is not None:
            consumer.queue.remove_consumer(consumer)
        elif consumer is self.reply_consumer:
            self.vhost.reply_consumers.pop(consumer.tag_address, None)
            self.reply_consumer = None

    def _basic_cancel(self, frame: commands.Basic.Cancel) -> None:
        consumer = self.consumers.pop(frame.consumer_tag, None)
        if not frame.nowait:
            self.conn.send(wire.tag_reply(self.number, wire.BASIC_CANCEL_OK, frame.consumer_tag))
        if consumer is not None:
            self._forget_consumer(consumer)

    def _basic_get(self, frame: commands.Basic.Get) -> None:
        name = self._queue_name(frame.queue, wire.index(60, 70))
        queue = self.vhost.get_queue(name, self.conn)
        entry = queue.take(ack_required=not frame.no_ack)
        if entry is None:
            self.conn.send(wire.basic_get_empty(self.number))
            return
        self.next_tag += 1
        tag = self.next_tag
        if not frame.no_ack:
            self.unacked[tag] = (queue, entry, None)
        message = entry.message
        block: PropertyBlock = message.properties
        annotations = queue.annotations(entry)
        raw = block.annotated(annotations) if annotations else block.raw
        body = message.body
        self.conn.send_parts(
            [
                wire.basic_get_ok_head(self.number, tag, entry.redelivered, message.exchange, message.routing_key, len(queue.ready)),
                *wire.content(self.number, len(body), raw, body, self.conn.frame_max),
            ]
        )

    # ------------------------------------------------------------- tx/confirm
    def _tx_select(self, frame: Any) -> None:
        if self.confirm:
            raise channel_error(PRECONDITION_FAILED, "cannot switch from confirm to tx mode", wire.index(90, 10))
        if self.tx is None:
            self.tx = []
        self.reply(wire.TX_SELECT_OK)

    def _tx_commit(self, frame: Any) -> None:
        if self.tx is None:
            raise channel_error(PRECONDITION_FAILED, "channel is not transactional", wire.index(90, 20))
        pending, self.tx = self.tx, []
        persistence = self.conn.broker.persistence
        before = persistence.sequence if persistence is not None else 0
        acks = []
        for kind, item in pending:
            if kind == "publish":
                exchange, routing_key, mandatory, message = item
                self._route(exchange, routing_key, mandatory, message)
            else:
                acks.append((kind, item))
        for kind, item in acks:
            if kind == "ack":
                self._settle(item)
            else:
                taken, requeue = item
                self._reject_taken(taken, requeue)
        if persistence is None:
            self.reply(wire.TX_COMMIT_OK)
        else:
            self._send_when_durable(before, wire.method(self.number, wire.TX_COMMIT_OK))

    def _tx_rollback(self, frame: Any) -> None:
        if self.tx is None:
            raise channel_error(PRECONDITION_FAILED, "channel is not transactional", wire.index(90, 30))
        pending, self.tx = self.tx, []
        restored = dict(self.unacked)
        for kind, item in pending:
            if kind == "ack":
                restored.update(item)
            elif kind == "reject":
                restored.update(item[0])
        self.unacked = dict(sorted(restored.items()))
        self.reply(wire.TX_ROLLBACK_OK)

    def _confirm_select(self, frame: commands.Confirm.Select) -> None:
        if self.tx is not None:
            raise channel_error(PRECONDITION_FAILED, "cannot switch from tx to confirm mode", wire.index(85, 10))
        self.confirm = True
        if not frame.nowait:
            self.reply(wire.CONFIRM_SELECT_OK)


REPLY_TO = "amq.rabbitmq.reply-to"
REPLY_TO_PREFIX = "amq.rabbitmq.reply-to."


class ReplyConsumer(ChannelConsumer):
    """A consumer of the direct reply-to pseudo-queue ``amq.rabbitmq.reply-to``."""

    __slots__ = ("tag_address",)


def _parse_expiration(text: str | None) -> int:
    """The expiration property as RabbitMQ validates it (milliseconds, >= 0)."""
    try:
        value = int(text or "", 10)
    except ValueError:
        raise channel_error(PRECONDITION_FAILED, f"invalid expiration '{text}': no_integer", wire.BASIC_PUBLISH) from None
    if value < 0:
        raise channel_error(PRECONDITION_FAILED, f"invalid expiration '{text}': {{value_negative,{value}}}", wire.BASIC_PUBLISH)
    return value


def _sender_selected(block: PropertyBlock, routing_key: str) -> tuple[PropertyBlock, list[str] | None]:
    """CC and BCC headers add routing keys; BCC is removed before delivery."""
    headers = block.headers() or {}
    keys = [routing_key]
    for name in ("CC", "BCC"):
        value = headers.get(name)
        if isinstance(value, list):
            keys.extend(v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in value if isinstance(v, (str, bytes)))
    if "BCC" in headers:
        stripped = {k: v for k, v in headers.items() if k != "BCC"}
        block = block.replaced(headers=stripped)
    return block, (keys if len(keys) > 1 else None)
