"""Make moto's DynamoDB and SQS cost what a request touches, not what is stored.

Local mode carries thousands of messages; moto (pinned in pyproject) was written for tests of a
few items, and in these places its cost grows with everything already stored:
- TransactWriteItems deep-copies every table it names, to restore them if it is cancelled;
- every Query walks the whole table (`Table.all_items`) to find the partition or index key;
- SQS DeleteMessage scans the queue twice per receipt handle, ReceiveMessage and long polling
  build the list of every visible message on each call and on every wake-up, and SendMessage
  counts every message of the queue;
- every DynamoDB item and SQS message moto ever made, copies included, stays referenced from a
  class-level list kept for moto's dashboard.

What this changes, and nothing else: a transaction snapshots only the items it writes and puts
those back when it is cancelled; a query looks only at its partition (or, on a global secondary
index, at the items holding its index key, from a key map kept up to date on every write);
SQS receives stop at the first visible messages and deletes find their message by receipt
handle. moto's own code still evaluates every condition, expression and error.
tests/integration/local/test_moto_patches.py pins the semantics the proxy relies on, so a moto
upgrade that moves these internals fails `make test`.
"""

from __future__ import annotations

import copy
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

_installed = False
_install_lock = threading.Lock()
_query_scope = threading.local()

TableKey = tuple[Any, Any]  # (hash DynamoType, range DynamoType | None)


def install() -> None:
    """Patch moto in this process; idempotent."""
    global _installed
    with _install_lock:
        if _installed:
            return
        _patch_dynamodb()
        _patch_sqs()
        _stop_tracking_every_instance()
        _installed = True


def _stop_tracking_every_instance() -> None:
    """moto keeps every model instance it ever made in a class-level list, for its dashboard:
    each item written, each copy taken by a transaction or a query, each SQS message handed
    out. Items and messages are made per request, so that list is memory that only grows."""
    from moto.core.common_models import BaseModel
    from moto.dynamodb.models.dynamo_type import Item
    from moto.sqs.models import Message

    untracked: tuple[Any, ...] = (Item, Message)
    original_new: Any = BaseModel.__new__

    def __new__(cls: Any, *args: Any, **kwargs: Any) -> Any:
        if issubclass(cls, untracked):
            return object.__new__(cls)
        return original_new(cls, *args, **kwargs)

    BaseModel.__new__ = __new__  # type: ignore[method-assign]
    for model in untracked:
        model.instances_tracked = []


# -- DynamoDB -----------------------------------------------------------------------------------


class _IndexKeyMap:
    """For each global secondary index of a table: index hash key value → the table keys of
    the items holding it. Kept up to date item by item on every write."""

    def __init__(self, table: Any) -> None:
        self.hash_attrs = {
            index.name: hash_keys[0]["AttributeName"]
            for index in table.global_indexes or []
            if len(hash_keys := [k for k in index.schema if k["KeyType"] == "HASH"]) == 1
        }
        self.members: dict[str, dict[Any, dict[TableKey, None]]] = {
            name: {} for name in self.hash_attrs
        }
        self.placed: dict[TableKey, dict[str, Any]] = {}
        for item in _all_stored_items(table):
            self.place(table, (item.hash_key, item.range_key))

    def place(self, table: Any, key: TableKey) -> None:
        self.remove(key)
        item = _stored_item(table, key)
        if item is None:
            return
        placed = {}
        for name, attr in self.hash_attrs.items():
            value = item.attrs.get(attr)
            if value is not None:
                self.members[name].setdefault(value, {})[key] = None
                placed[name] = value
        if placed:
            self.placed[key] = placed

    def remove(self, key: TableKey) -> None:
        for name, value in self.placed.pop(key, {}).items():
            holders = self.members[name].get(value)
            if holders is not None:
                holders.pop(key, None)
                if not holders:
                    del self.members[name][value]


def _all_stored_items(table: Any) -> Iterator[Any]:
    for stored in list(table.items.values()):
        if table.range_key_attr:
            yield from list(stored.values())
        else:
            yield stored


def _stored_item(table: Any, key: TableKey) -> Any:
    hash_value, range_value = key
    stored = table.items.get(hash_value)
    if stored is None:
        return None
    return stored.get(range_value) if table.range_key_attr else stored


def _key_map(table: Any) -> _IndexKeyMap:
    # Built on first use, so tables restored from a saved state or created any way get one.
    key_map = table.__dict__.get("_mailproxy_index_keys")
    if key_map is None:
        key_map = _IndexKeyMap(table)
        table.__dict__["_mailproxy_index_keys"] = key_map
    return key_map


def _reindex(table: Any, key: TableKey) -> None:
    if table.global_indexes and "_mailproxy_index_keys" in table.__dict__:
        _key_map(table).place(table, key)


def _unindex(table: Any, key: TableKey) -> None:
    if "_mailproxy_index_keys" in table.__dict__:
        _key_map(table).remove(key)


def _query_candidates(
    table: Any, hash_key: Any, index_name: str | None, hash_conditions: list[Any] | None
) -> list[Any] | None:
    """The only items a query can return, or None to let moto look at everything."""
    if index_name is None:
        if hash_key is None:
            return None
        stored = table.items.get(hash_key)
        if stored is None:
            return []
        return list(stored.values()) if table.range_key_attr else [stored]
    key_map = _key_map(table)
    attr = key_map.hash_attrs.get(index_name)
    if attr is None:
        return None
    conditions = dict(hash_conditions or [])
    value = conditions.get(attr, hash_key if not conditions else None)
    if value is None:
        return None
    keys = key_map.members[index_name].get(value, {})
    return [item for key in list(keys) if (item := _stored_item(table, key)) is not None]


@contextmanager
def _scoped_items(table: Any, candidates: list[Any] | None) -> Iterator[None]:
    previous = getattr(_query_scope, "scope", None)
    _query_scope.scope = (table, candidates) if candidates is not None else None
    try:
        yield
    finally:
        _query_scope.scope = previous


class _TablesNotCopied:
    """Stands in for the `copy` module inside moto's backend module: a transaction's
    whole-table backup becomes the table itself, and the item-level snapshot taken by
    `transact_write_items` below is what a cancellation restores."""

    def __init__(self, table_class: type) -> None:
        self._table_class = table_class

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        if isinstance(value, self._table_class):
            return value
        return copy.deepcopy(value, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


def _patch_dynamodb() -> None:
    import moto.dynamodb.models as backend_module
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    backend_module.copy = _TablesNotCopied(Table)  # type: ignore[assignment]
    _copy_update_trees_by_pickle()
    _parse_each_expression_once()
    _look_up_tree_processors_by_type()
    _check_each_update_shape_once()
    _list_each_handler_s_methods_once()
    _parse_each_condition_shape_once()

    original_all_items = Table.all_items
    original_query = Table.query
    original_put = Table.put_item
    original_delete = Table.delete_item
    original_update = DynamoDBBackend.update_item
    original_transact = DynamoDBBackend.transact_write_items

    def all_items(self: Any) -> list[Any]:
        scope = getattr(_query_scope, "scope", None)
        if scope is not None and scope[0] is self:
            return list(scope[1])
        return original_all_items(self)

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
        candidates = _query_candidates(
            self, hash_key, index_name, kwargs.get("hash_key_conditions")
        )
        with _scoped_items(self, candidates):
            return original_query(self, hash_key, *args, **kwargs)

    def put_item(self: Any, item_attrs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        item = original_put(self, item_attrs, *args, **kwargs)
        _reindex(self, (item.hash_key, item.range_key))
        return item

    def delete_item(self: Any, hash_key: Any, range_key: Any) -> Any:
        item = original_delete(self, hash_key, range_key)
        _unindex(self, (hash_key, range_key))
        return item

    def update_item(self: Any, table_name: str, key: dict[str, Any], *args: Any, **kw: Any) -> Any:
        table = self.get_table(table_name)
        try:
            return original_update(self, table_name, key, *args, **kw)
        finally:
            # An update changes its item in place, index key attributes included; a malformed
            # key changed nothing to reindex.
            with suppress(Exception):
                _reindex(table, self.get_keys_value(table, key))

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        snapshot: dict[tuple[str, TableKey], tuple[Any, Any]] = {}
        for entry in transact_items:
            try:
                _, operation = next(iter(entry.items()))
                table = self.get_table(operation["TableName"])
                attrs = operation.get("Item") or operation["Key"]
                key = (
                    DynamoType(attrs[table.hash_key_attr]),
                    DynamoType(attrs[table.range_key_attr]) if table.range_key_attr else None,
                )
            except Exception:  # noqa: S112 - moto reports a malformed entry itself
                continue
            if (table.name, key) not in snapshot:
                snapshot[(table.name, key)] = (table, copy.deepcopy(_stored_item(table, key)))
        try:
            original_transact(self, transact_items)
        except BaseException:
            for (_, key), (table, before) in snapshot.items():
                _restore(table, key, before)
            raise

    Table.all_items = all_items  # type: ignore[method-assign]
    Table.query = query  # type: ignore[method-assign]
    Table.put_item = put_item  # type: ignore[method-assign]
    Table.delete_item = delete_item  # type: ignore[method-assign]
    DynamoDBBackend.update_item = update_item  # type: ignore[method-assign]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def _copy_update_trees_by_pickle() -> None:
    """Each update validates a deep copy of its parsed expression tree; a pickle round trip
    makes the same fresh tree in under half the time of copy.deepcopy."""
    import pickle

    import moto.dynamodb.parsing.validators as validators
    from moto.dynamodb.parsing.ast_nodes import Node  # type: ignore[attr-defined]

    def fresh_copy(value: Any, memo: Any = None) -> Any:
        if isinstance(value, Node):
            return pickle.loads(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))  # noqa: S301
        return copy.deepcopy(value, memo)

    validators.deepcopy = fresh_copy  # type: ignore[assignment]


_PARSED_LIMIT = 2048  # distinct expressions kept; the proxy uses a few dozen


def _parse_each_expression_once() -> None:
    """moto parses every update and condition expression on every request; the proxy sends
    the same few dozen expressions thousands of times. An update tree is deep-copied before it
    is validated, so the parsed tree is kept per expression; a condition keeps its tokens.
    Errors are not kept: an invalid expression raises again on every request."""
    from moto.dynamodb.comparisons import ConditionExpressionParser
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]

    update_trees: dict[str, Any] = {}
    original_make = UpdateExpressionParser.make.__func__

    def make(cls: Any, expression_str: str) -> Any:
        tree = update_trees.get(expression_str)
        if tree is None:
            tree = original_make(cls, expression_str)
            if len(update_trees) >= _PARSED_LIMIT:
                update_trees.clear()
            update_trees[expression_str] = tree
        return tree

    UpdateExpressionParser.make = classmethod(make)

    # A condition's tokens depend on its text alone (names and values are looked up after);
    # each request gets fresh tokens, so moto's later passes may change them as they do now.
    tokens_by_text: dict[str, tuple[Any, ...]] = {}
    original_lex = ConditionExpressionParser._lex_condition_expression

    def _lex_condition_expression(self: Any) -> deque[Any]:
        text = self.condition_expression
        tokens = tokens_by_text.get(text)
        if tokens is None:
            tokens = tuple(original_lex(self))
            if len(tokens_by_text) >= _PARSED_LIMIT:
                tokens_by_text.clear()
            tokens_by_text[text] = tokens
        return deque(token._replace(children=list(token.children)) for token in tokens)

    ConditionExpressionParser._lex_condition_expression = _lex_condition_expression  # type: ignore[method-assign]


def _look_up_tree_processors_by_type() -> None:
    """Validating an update walks its tree once per processor, and at every node moto rebuilds
    the processor's class map and runs isinstance against abstract classes. Which processor
    takes a node depends only on the processor's class and the node's class, so it is looked
    up once per pair; the walk and the processing are moto's."""
    from moto.dynamodb.parsing.ast_nodes import (  # type: ignore[attr-defined]
        DepthFirstTraverser,
        Node,
    )

    slots: dict[tuple[type, type], int] = {}
    node_types: dict[type, bool] = {}

    def processor_for(self: Any, node: Any) -> Any:
        key = (type(self), type(node))
        slot = slots.get(key)
        if slot is None:
            matches = [i for i, cls in enumerate(self._processing_map()) if isinstance(node, cls)]
            slot = slots[key] = matches[0] if matches else -1
        if slot < 0:
            return None
        processors = self.__dict__.get("_mailproxy_processors")
        if processors is None:
            processors = self.__dict__["_mailproxy_processors"] = list(
                self._processing_map().values()
            )
        return processors[slot]

    def traverse_node_recursively(self: Any, node: Any, child_id: int = -1) -> Any:
        is_node = node_types.get(type(node))
        if is_node is None:
            is_node = node_types[type(node)] = isinstance(node, Node)
        if is_node:
            parent_node = node.parent
            if node.children is not None:
                for i, child_node in enumerate(node.children):
                    self.pre_processing_of_child(node, i)
                    self.traverse_node_recursively(child_node, i)
            processor = processor_for(self, node)
            if processor is not None:
                node = processor(node)
                node.parent = parent_node
                if parent_node:
                    parent_node.children[child_id] = node
        return node

    DepthFirstTraverser.traverse_node_recursively = traverse_node_recursively


def _check_each_update_shape_once() -> None:
    """Three of the ten passes that validate an update read only its expression, its attribute
    names and the table's keys (one clause of each kind, no overlapping paths, no key attribute
    changed); the proxy sends the same few dozen shapes thousands of times, so a shape passes
    them once and is then trusted. The seven passes that read values and the item run on every
    request, and a shape that failed is checked again (and fails again) each time."""
    from moto.dynamodb.parsing.validators import (
        ActionCountValidator,
        OverlappingPathsValidator,
        UpdateExpressionValidator,
        UpdateHashRangeKeyValidator,
    )

    shape_only = (ActionCountValidator, OverlappingPathsValidator, UpdateHashRangeKeyValidator)
    # Keyed by the parsed tree kept per expression (_parse_each_expression_once), held here so
    # its id is never reused while the entry lives.
    passed: dict[int, tuple[Any, set[Any]]] = {}
    original_init = UpdateExpressionValidator.__init__
    original_validate = UpdateExpressionValidator.validate

    def __init__(self: Any, expression: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, expression, *args, **kwargs)
        names = tuple(sorted((self.expression_attribute_names or {}).items()))
        shape = (names, tuple(self.table.table_key_attrs))
        entry = passed.get(id(expression))
        if entry is not None and entry[0] is expression and shape in entry[1]:
            self.processors = [p for p in self.processors if not isinstance(p, shape_only)]
        else:
            self._mailproxy_unchecked_shape = (expression, shape)

    def validate(self: Any) -> Any:
        node = original_validate(self)
        unchecked = self.__dict__.pop("_mailproxy_unchecked_shape", None)
        if unchecked is not None:
            expression, shape = unchecked
            if len(passed) >= _PARSED_LIMIT:
                passed.clear()
            entry = passed.setdefault(id(expression), (expression, set()))
            if entry[0] is expression:
                entry[1].add(shape)
        return node

    UpdateExpressionValidator.__init__ = __init__  # type: ignore[method-assign]
    UpdateExpressionValidator.validate = validate  # type: ignore[method-assign]


def _list_each_handler_s_methods_once() -> None:
    """moto lists its response class's methods with inspect.getmembers on every request, to
    find the one for the action (about a tenth of a DynamoDB request here); a class's methods
    do not change while it serves, so they are listed once per class."""
    import functools

    import moto.core.responses as responses

    responses.method_names_from_class = functools.cache(responses.method_names_from_class)


def _parse_each_condition_shape_once() -> None:
    """A condition is parsed twice a request (once to check the names and values it uses,
    once to evaluate it), and the proxy sends a few dozen shapes thousands of times. The parsed
    condition is kept per shape (its text, its names, the names and types of its values); each
    request gets a fresh copy of it holding that request's values, so conditions of one
    transaction never share a value. Errors are not kept: a bad condition fails every time."""
    import contextvars

    from moto.dynamodb.comparisons import AttributeValue, ConditionExpressionParser

    parsed_by_shape: dict[Any, tuple[Any, list[str], list[str]]] = {}
    naming: contextvars.ContextVar[dict[int, str] | None] = contextvars.ContextVar(
        "mailproxy_condition_values", default=None
    )
    binding: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
        "mailproxy_condition_binding", default=None
    )
    original_parse = ConditionExpressionParser.parse
    original_init = AttributeValue.__init__

    def __init__(self: Any, value: dict[str, Any]) -> None:
        original_init(self, value)
        names = naming.get()
        if names is not None:  # made by a parse: remember which expression value it holds
            self._mailproxy_value_name = names.get(id(value))

    def __deepcopy__(self: Any, memo: dict[int, Any]) -> Any:
        values = binding.get()
        name = self.__dict__.get("_mailproxy_value_name")
        if values is not None and name is not None:
            fresh: Any = AttributeValue(values[name])
            fresh._mailproxy_value_name = name
            return fresh
        clone = object.__new__(type(self))
        memo[id(self)] = clone
        clone.__dict__.update(copy.deepcopy(self.__dict__, memo))
        return clone

    def parse(self: Any) -> Any:
        if not self.condition_expression:
            return original_parse(self)
        values = self.expression_attribute_values or {}
        try:
            shape = (
                self.condition_expression,
                tuple(sorted((self.expression_attribute_names or {}).items())),
                tuple(sorted((key, tuple(value)) for key, value in values.items())),
            )
        except TypeError:  # not the shape of a well-formed request: moto decides
            return original_parse(self)
        kept = parsed_by_shape.get(shape)
        if kept is None:
            token = naming.set({id(value): key for key, value in values.items()})
            try:
                op = original_parse(self)
            finally:
                naming.reset(token)
            if len(parsed_by_shape) >= _PARSED_LIMIT:
                parsed_by_shape.clear()
            parsed_by_shape[shape] = (
                op,
                list(self.expr_attr_names_found),
                list(self.expr_attr_values_found),
            )
            kept = parsed_by_shape[shape]
        else:
            self.expr_attr_names_found.extend(kept[1])
            self.expr_attr_values_found.extend(kept[2])
        bound = binding.set(values)
        try:
            return copy.deepcopy(kept[0])
        finally:
            binding.reset(bound)

    AttributeValue.__init__ = __init__  # type: ignore[method-assign]
    AttributeValue.__deepcopy__ = __deepcopy__  # type: ignore[attr-defined]
    ConditionExpressionParser.parse = parse  # type: ignore[method-assign]


def _restore(table: Any, key: TableKey, item: Any) -> None:
    hash_value, range_value = key
    if item is None:
        if table.range_key_attr:
            stored = table.items.get(hash_value)
            if stored is not None:
                stored.pop(range_value, None)
                if not stored:
                    del table.items[hash_value]
        else:
            table.items.pop(hash_value, None)
    elif table.range_key_attr:
        table.items[hash_value][range_value] = item
    else:
        table.items[hash_value] = item
    _reindex(table, key)


def expire_items(table: Any, attribute: str, now: float) -> int:
    """Delete the items whose TTL attribute (epoch seconds) is in the past, as DynamoDB's TTL
    does; returns how many. Callers serialize it with the table's other requests."""
    expired = []
    for item in _all_stored_items(table):
        value = item.attrs.get(attribute)
        if value is None or value.type != "N":
            continue
        try:
            expires_at = float(value.value)
        except ValueError:
            continue
        if expires_at < now:
            expired.append((item.hash_key, item.range_key))
    for hash_value, range_value in expired:
        table.delete_item(hash_value, range_value)
    return len(expired)


def expire_everywhere(now: float) -> int:
    """The TTL sweep of every table with TTL enabled, in every account and region of this
    process's moto; returns how many items it deleted."""
    from moto.backends import get_backend

    removed = 0
    for regions in list(get_backend("dynamodb").values()):
        for backend in list(regions.values()):
            for table in list(backend.tables.values()):
                ttl = getattr(table, "ttl", None) or {}
                if ttl.get("TimeToLiveStatus") == "ENABLED" and ttl.get("AttributeName"):
                    removed += expire_items(table, ttl["AttributeName"], now)
    return removed


# -- SQS ----------------------------------------------------------------------------------------

_sending = threading.local()
_receipts: dict[str, Any] = {}  # receipt handle → message, for DeleteMessage


def _visible_now(message: Any, now_ms: float) -> bool:
    # Message.visible and .delayed each read the clock through datetime; once per walk is enough.
    return bool(message.visible_at < now_ms and not now_ms < message.delayed_until)


def _any_visible(messages: list[Any], now_ms: float) -> bool:
    return any(_visible_now(message, now_ms) for message in messages)


def _patch_sqs() -> None:
    from moto.core.utils import unix_time, unix_time_millis
    from moto.sqs.exceptions import ReceiptHandleIsInvalid
    from moto.sqs.models import Message, Queue, SQSBackend, _filter_message_attributes

    original_mark_received = Message.mark_received

    def mark_received(self: Any, visibility_timeout: int | None = None) -> None:
        original_mark_received(self, visibility_timeout)
        _receipts[self.receipt_handle] = self

    def delete_message(self: Any, receipt_handle: str) -> None:
        if receipt_handle in self.deleted_messages:
            return
        message = _receipts.get(receipt_handle)
        if message is None or message not in self._messages:
            raise ReceiptHandleIsInvalid()
        self.pending_messages.discard(message)
        handles = message.all_receipt_handles
        self.deleted_messages.update(handles)
        for handle in handles:
            _receipts.pop(handle, None)
        self._messages.remove(message)

    def wait_for_messages(self: Any, timeout: int) -> None:
        with self._messages_lock:
            self._messages_lock.wait_for(
                lambda: _any_visible(self._messages, unix_time_millis()), timeout=timeout
            )

    def receive_message(
        self: Any,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        visibility_timeout: int,
        message_attribute_names: list[str] | None = None,
    ) -> list[Any]:
        # moto's loop, walking the queue lazily instead of listing every visible message.
        queue = self.get_queue(queue_name)
        if queue.fifo_queue:
            return original_receive(
                self,
                queue_name,
                count,
                wait_seconds_timeout,
                visibility_timeout,
                message_attribute_names,
            )
        polling_end = unix_time() + wait_seconds_timeout
        result: list[Any] = []
        while True:
            to_dlq = []
            now_ms = unix_time_millis()
            for message in list(queue._messages):
                if not _visible_now(message, now_ms):
                    continue
                queue.pending_messages.discard(message)
                if (
                    queue.dead_letter_queue is not None
                    and queue.redrive_policy
                    and message.approximate_receive_count >= queue.redrive_policy["maxReceiveCount"]
                ):
                    to_dlq.append(message)
                    continue
                queue.pending_messages.add(message)
                message.mark_received(visibility_timeout=visibility_timeout)
                received = copy.deepcopy(message)
                _filter_message_attributes(received, message_attribute_names or [])
                retained_until = message.sent_timestamp / 1000 + int(queue.message_retention_period)
                if retained_until <= now_ms / 1000:
                    break  # past the queue's retention period, as moto decides it
                result.append(received)
                if len(result) >= count:
                    break
            for message in to_dlq:
                queue._messages.remove(message)
                queue.dead_letter_queue.add_message(message)
            if result or not wait_seconds_timeout or unix_time() > polling_end:
                return result
            queue.wait_for_messages(1)

    original_receive = SQSBackend.receive_message
    original_send = SQSBackend.send_message
    original_attributes: property = Queue.attributes  # type: ignore[assignment]

    def attributes(self: Any) -> dict[str, Any]:
        if getattr(_sending, "active", False) and not self.fifo_queue:
            return {}  # SendMessage reads only ContentBasedDeduplication, a FIFO attribute
        return original_attributes.fget(self)  # type: ignore[misc]

    def send_message(self: Any, *args: Any, **kwargs: Any) -> Any:
        # moto builds every queue attribute, message counts included, to read one of them.
        _sending.active = True
        try:
            return original_send(self, *args, **kwargs)
        finally:
            _sending.active = False

    Queue.attributes = property(attributes)  # type: ignore[assignment,method-assign]
    SQSBackend.send_message = send_message  # type: ignore[method-assign]
    Message.mark_received = mark_received  # type: ignore[method-assign]
    Queue.delete_message = delete_message  # type: ignore[method-assign]
    Queue.wait_for_messages = wait_for_messages  # type: ignore[method-assign]
    SQSBackend.receive_message = receive_message  # type: ignore[method-assign]
