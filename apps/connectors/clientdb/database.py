"""ClientDatabase: canonical get/query/insert/update on a data source through its field mapping."""

from __future__ import annotations

import logging
import operator
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeEngine

from apps.core.db import tenant_connection

from ..errors import ClientDatabaseError, classify
from ..mapping import COLUMN_RE, TABLE_RE
from .engines import Handle, handle_for, password_of, timeouts
from .values import coerce, to_json

if TYPE_CHECKING:
    from apps.deployments.models import Deployment

    from ..models import DataSource

logger = logging.getLogger("apps.connectors.clientdb")

OPERATORS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "contains")
KEY_FIELD = "id"
MAX_IN_VALUES = 1000


@dataclass
class _Field:
    name: str
    table: str | None  # None: the main table; otherwise a side table
    column: str


@dataclass
class _Entity:
    name: str
    table: str
    key: str
    fields: dict[str, _Field | None]  # None: not in this database
    joins: dict[str, tuple[str, str]]  # side table -> (its column, the main column it holds)
    types: dict[str, str]


def _split(table: str) -> tuple[str | None, str]:
    schema, _, name = table.rpartition(".")
    return schema or None, name


def _entities(mapping: dict) -> dict[str, _Entity]:
    """The mapping's entities, with every identifier checked again (defence in depth)."""
    problem = ClientDatabaseError("The field mapping is not valid; save it again in the mapping editor.")
    entities = mapping.get("entities") if isinstance(mapping, dict) else None
    if not isinstance(entities, dict):
        raise problem
    result: dict[str, _Entity] = {}
    for name, spec in entities.items():
        if not isinstance(spec, dict):
            raise problem
        table, key = str(spec.get("table", "")), str(spec.get("key", ""))
        if not TABLE_RE.match(table) or not COLUMN_RE.match(key):
            raise problem
        joins: dict[str, tuple[str, str]] = {}
        for side, join in (spec.get("joins") or {}).items():
            column, references = str(join.get("column", "")), str(join.get("references", ""))
            if not TABLE_RE.match(side) or not COLUMN_RE.match(column) or not COLUMN_RE.match(references):
                raise problem
            joins[side] = (column, references)
        fields: dict[str, _Field | None] = {}
        for canonical, ref in (spec.get("fields") or {}).items():
            if ref is None:
                fields[canonical] = None
                continue
            side, _, column = str(ref).rpartition(".")
            if not COLUMN_RE.match(column) or (side and side not in joins):
                raise problem
            fields[canonical] = _Field(canonical, side or None, column)
        result[name] = _Entity(name, table, key, fields, joins, dict(spec.get("types") or {}))
    return result


@dataclass
class _Tables:
    """The tables one operation touches: plain (for writes) and aliased (for reads), main under None.

    Columns are addressed by the name the mapping uses; `columns` gives the database's own spelling
    (it may differ in case) and `types` the reflected type, used to coerce values before binding.
    """

    plain: dict[str | None, sa.TableClause] = field(default_factory=dict)
    aliased: dict[str | None, Any] = field(default_factory=dict)
    columns: dict[str | None, dict[str, str]] = field(default_factory=dict)
    types: dict[str | None, dict[str, TypeEngine]] = field(default_factory=dict)

    def read(self, side: str | None, column: str) -> ColumnElement:
        return self.aliased[side].c[self.columns[side][column]]

    def write(self, side: str | None, column: str) -> ColumnElement:
        return self.plain[side].c[self.columns[side][column]]

    def row(self, side: str | None, values: dict[str, Any]) -> dict[str, Any]:
        """Values keyed by the database's column names (for INSERT/UPDATE)."""
        return {self.columns[side][column]: value for column, value in values.items()}


class ClientDatabase:
    """A data source seen through a field mapping: canonical entities and fields in, canonical rows out."""

    def __init__(self, *, source: DataSource, mapping: dict, handle: Handle):
        self.source = source
        self.mapping = mapping
        self._handle = handle
        self._engine_name = source.engine
        self._entities = _entities(mapping)
        self._connect_timeout, self._statement_timeout = timeouts(source)

    # -- the interface the runtime's db tools call

    def get(self, entity: str, id: Any) -> dict | None:
        """The row with this id, as {canonical field: value} (null-mapped fields absent), or None."""
        spec = self._entity(entity)
        with self._reading() as conn:
            tables = self._tables(conn, spec)
            return self._get(conn, spec, tables, self._bind(tables, self._key(spec), id, spec))

    def query(
        self,
        entity: str,
        *,
        filter: dict | None = None,
        fields: list[str] | None = None,
        limit: int | None = None,
        order_by: str | None = None,
    ) -> list[dict]:
        """Rows matching `filter`, at most `limit` (capped at the source's row limit), in `order_by` order.

        filter: {field: value} (equality; None matches empty) or {field: {op: value, …}} with ops
        eq ne lt lte gt gte in contains (several ops on one field all apply). order_by: "field" or
        "-field" (descending); by id otherwise.
        """
        spec = self._entity(entity)
        selected = self._selected(spec, fields)
        cap = int(self.source.row_limit)
        if limit is None:
            limit = cap
        elif isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ClientDatabaseError("The limit is a whole number of at least 1.")
        limit = min(limit, cap)
        filters = self._filters(spec, filter)
        order = self._order_field(spec, order_by)
        with self._reading() as conn:
            tables = self._tables(conn, spec)
            sides = {item.table for item in [*selected, *[f for f, _, _ in filters]] if item.table}
            if order is not None and order[0].table:
                sides.add(order[0].table)
            statement = self._select(spec, tables, selected, sides)
            statement = statement.where(*[self._condition(spec, tables, *item) for item in filters])
            ordering = [tables.read(None, spec.key).asc()]
            if order is not None:
                column = tables.read(order[0].table, order[0].column)
                ordering.insert(0, column.desc() if order[1] else column.asc())
            rows = conn.execute(statement.order_by(*ordering).limit(limit)).mappings().all()
        return [self._row(spec, tables, row, selected) for row in rows]

    def insert(self, entity: str, values: dict) -> dict:
        """Insert a row (and its side-table rows for the side fields given); the row as read back, with id."""
        spec = self._entity(entity)
        main, sides, given_id = self._split_values(spec, values, allow_id=True)
        with self._writing() as conn:
            tables = self._tables(conn, spec)
            key = self._key(spec)
            row = {mapped.column: self._bind(tables, mapped, value, spec) for mapped, value in main}
            if given_id is not None:
                row[spec.key] = self._bind(tables, key, given_id, spec)
            statement = sa.insert(tables.plain[None]).values(tables.row(None, row))
            if given_id is not None:
                conn.execute(statement)
                new_id = row[spec.key]
            elif conn.dialect.insert_returning:
                new_id = conn.execute(statement.returning(tables.write(None, spec.key))).scalar_one()
            else:
                new_id = conn.execute(statement).lastrowid
                if not new_id:
                    raise ClientDatabaseError(
                        f"The {entity} was not added: the database gave no id for the new row; give its id."
                    )
            for side, side_values in sides.items():
                reference = self._reference(conn, spec, tables, side, new_id)
                self._insert_side(conn, spec, tables, side, reference, side_values)
            created = self._get(conn, spec, tables, new_id)
        if created is None:  # pragma: no cover - the row was just written in this transaction
            raise ClientDatabaseError(f"The {entity} was added but cannot be read back.")
        return created

    def update(self, entity: str, id: Any, values: dict) -> dict:
        """Change the row with this id and its side-table rows: {"id", "updated", "before", "after"}.

        `updated` is 1 when the row exists, 0 when it does not (and nothing is written).
        """
        spec = self._entity(entity)
        main, sides, _ = self._split_values(spec, values, allow_id=False)
        with self._writing() as conn:
            tables = self._tables(conn, spec)
            key_value = self._bind(tables, self._key(spec), id, spec)
            key_column = tables.write(None, spec.key)
            lock = sa.select(key_column).where(key_column == key_value)
            if self._engine_name != "sqlite":  # SQLite's write lock is taken at BEGIN IMMEDIATE
                lock = lock.with_for_update()
            if conn.execute(lock).first() is None:
                return {"id": id, "updated": 0, "before": None, "after": None}
            before = self._get(conn, spec, tables, key_value)
            if main:
                changes = {mapped.column: self._bind(tables, mapped, value, spec) for mapped, value in main}
                conn.execute(
                    sa.update(tables.plain[None])
                    .where(key_column == key_value)
                    .values(tables.row(None, changes))
                )
            for side, side_values in sides.items():
                reference = self._reference(conn, spec, tables, side, key_value)
                join_column = tables.write(side, spec.joins[side][0])
                changes = {
                    mapped.column: self._bind(tables, mapped, value, spec) for mapped, value in side_values
                }
                result = conn.execute(
                    sa.update(tables.plain[side])
                    .where(join_column == reference)
                    .values(tables.row(side, changes))
                )
                if result.rowcount == 0:  # no side row yet: the first side field written creates it
                    self._insert_side(conn, spec, tables, side, reference, side_values)
            after = self._get(conn, spec, tables, key_value)
        return {"id": (after or {}).get(KEY_FIELD, id), "updated": 1, "before": before, "after": after}

    # -- the connection test

    def ping(self) -> str:
        """Connect and run a trivial read; the server's name and version."""
        with self._reading() as conn:
            if self._engine_name == "sqlite":
                # Opening a file reads nothing yet: read the schema, so a file that is no database shows.
                conn.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar_one()
            else:
                conn.execute(sa.select(sa.literal(1))).scalar_one()
            version = ".".join(str(part) for part in (conn.dialect.server_version_info or ()))
        names = {"postgresql": "PostgreSQL", "mysql": "MySQL/MariaDB", "sqlite": "SQLite"}
        return f"{names[self._engine_name]} {version}".strip()

    def probe(self) -> list[str]:
        """Read one row of every mapped entity (every mapped column, side tables joined); their names."""
        for entity in self._entities:
            self.query(entity, limit=1)
        return sorted(self._entities)

    # -- transactions

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        try:
            with self._handle.engine.connect() as conn:
                yield conn
        except ClientDatabaseError as known:
            if known.kind == "mapping":
                self._forget_tables()
            raise
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            error = classify(
                exc,
                self.source,
                password=self._safe_password(),
                timeout=self._connect_timeout,
                statement_timeout=self._statement_timeout,
            )
            if error.kind == "mapping":
                self._forget_tables()
            elif error.kind == "error":  # not a condition we recognise: keep the details for operators
                logger.warning("Unexpected error from data source %s: %r", self.source.key, exc)
            raise error from None

    def _forget_tables(self) -> None:
        # A table changed under us (or the mapping names one that is missing): reflect again next time.
        with self._handle.lock:
            self._handle.columns.clear()

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        with self._connection() as conn:
            if self._engine_name == "postgresql":
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            elif self._engine_name == "mysql":
                conn.exec_driver_sql("START TRANSACTION READ ONLY")
            else:
                conn.exec_driver_sql("PRAGMA query_only = ON")
            try:
                yield conn
            finally:
                conn.rollback()
                if self._engine_name == "sqlite":
                    conn.exec_driver_sql("PRAGMA query_only = OFF")

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        with self._connection() as conn:
            if self._engine_name == "sqlite":
                # Take the write lock first, so what is read before the change is what it changes.
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    def _safe_password(self) -> str | None:
        try:
            return password_of(self.source)
        except ClientDatabaseError:
            return None

    # -- the mapping

    def _entity(self, name: Any) -> _Entity:
        spec = self._entities.get(name) if isinstance(name, str) else None
        if spec is None:
            known = ", ".join(sorted(self._entities)) or "none"
            raise ClientDatabaseError(f"Unknown entity '{name}' (this mapping has: {known}).")
        return spec

    @staticmethod
    def _key(spec: _Entity) -> _Field:
        return _Field(KEY_FIELD, None, spec.key)

    def _field(self, spec: _Entity, name: Any, *, purpose: str = "") -> _Field | None:
        """The mapped field; None when it is null-mapped (ClientDatabaseError instead when `purpose` says
        what it was needed for); ClientDatabaseError when the entity has no such field."""
        if name == KEY_FIELD:
            return self._key(spec)
        if not isinstance(name, str) or name not in spec.fields:
            known = ", ".join(sorted([KEY_FIELD, *spec.fields]))
            raise ClientDatabaseError(f"Unknown field '{name}' of {spec.name} (its fields: {known}).")
        mapped = spec.fields[name]
        if mapped is None and purpose:
            raise ClientDatabaseError(
                f"{spec.name}.{name} is not in this client's database, so it cannot be {purpose}."
            )
        return mapped

    def _selected(self, spec: _Entity, fields: list[str] | None) -> list[_Field]:
        """The fields a read returns: the id first, then the requested (or every) mapped field."""
        if fields is None:
            names = [KEY_FIELD, *spec.fields]
        elif isinstance(fields, list | tuple):
            names = [KEY_FIELD, *fields]
        else:
            raise ClientDatabaseError("The fields are a list of field names.")
        selected = [self._field(spec, name) for name in dict.fromkeys(names)]
        return [item for item in selected if item is not None]

    def _split_values(
        self, spec: _Entity, values: dict, *, allow_id: bool
    ) -> tuple[list[tuple[_Field, Any]], dict[str, list[tuple[_Field, Any]]], Any]:
        """(main-table fields, side-table fields by table, the id given); null-mapped fields left out."""
        if not isinstance(values, dict):
            raise ClientDatabaseError("The values are a map of field names to values.")
        main: list[tuple[_Field, Any]] = []
        sides: dict[str, list[tuple[_Field, Any]]] = {}
        given_id = None
        for name, value in values.items():
            if name == KEY_FIELD:
                if not allow_id:
                    raise ClientDatabaseError(f"The id of a {spec.name} cannot be changed.")
                given_id = value
                continue
            mapped = self._field(spec, name)
            if mapped is None:
                continue  # not in this client's database: the tool leaves it out
            if mapped.table is None:
                main.append((mapped, value))
            else:
                sides.setdefault(mapped.table, []).append((mapped, value))
        return main, sides, given_id

    def _filters(self, spec: _Entity, filters: dict | None) -> list[tuple[_Field, str, Any]]:
        """The filter as (field, operator, value) triples, checked against the mapping."""
        if filters is None:
            return []
        if not isinstance(filters, dict):
            raise ClientDatabaseError("The filter is a map of field names to values.")
        triples: list[tuple[_Field, str, Any]] = []
        for name, condition in filters.items():
            mapped = self._field(spec, name, purpose="filtered on")
            assert mapped is not None  # with a purpose, a null-mapped field raises
            operations = condition if isinstance(condition, dict) else {"eq": condition}
            if not operations:
                raise ClientDatabaseError(f"The filter on {name} names no operator.")
            for op, value in operations.items():
                if op not in OPERATORS:
                    known = ", ".join(OPERATORS)
                    raise ClientDatabaseError(
                        f"Unknown operator '{op}' in the filter on {name} (use one of: {known})."
                    )
                triples.append((mapped, op, value))
        return triples

    def _order_field(self, spec: _Entity, order_by: str | None) -> tuple[_Field, bool] | None:
        """(field, descending) of order_by, or None for the default order (by id)."""
        if order_by in (None, ""):
            return None
        if not isinstance(order_by, str):
            raise ClientDatabaseError("order_by is a field name, with '-' in front for descending.")
        mapped = self._field(spec, order_by.removeprefix("-"), purpose="sorted on")
        assert mapped is not None
        return mapped, order_by.startswith("-")

    # -- SQL

    def _reflect(self, conn: Connection, table: str) -> dict[str, TypeEngine]:
        """The table's columns and their types, as the database has them (cached per engine)."""
        with self._handle.lock:
            cached = self._handle.columns.get(table)
        if cached is not None:
            return cached
        schema, name = _split(table)
        columns = {
            str(column["name"]): column["type"]
            for column in sa.inspect(conn).get_columns(name, schema=schema)
        }
        if not columns:
            raise sa.exc.NoSuchTableError(table)
        with self._handle.lock:
            self._handle.columns[table] = columns
        return columns

    def _tables(self, conn: Connection, spec: _Entity) -> _Tables:
        """The entity's tables with the mapped columns only, checked against what the database has."""
        needed: dict[str | None, set[str]] = {None: {spec.key}}
        for side_table, (column, references) in spec.joins.items():
            needed.setdefault(side_table, set()).add(column)
            needed[None].add(references)
        for mapped in spec.fields.values():
            if mapped is not None:
                needed.setdefault(mapped.table, set()).add(mapped.column)
        tables = _Tables()
        for index, side in enumerate(sorted(needed, key=lambda item: item or "")):
            full_name = side or spec.table
            reflected = self._reflect(conn, full_name)
            folded = {name.lower(): name for name in reflected}
            names: dict[str, str] = {}
            for name in sorted(needed[side]):
                actual: str | None = name if name in reflected else folded.get(name.lower())
                if actual is None:
                    raise ClientDatabaseError(
                        f"The field mapping names the column “{name}” of table “{full_name}”, which the "
                        "database does not have.",
                        kind="mapping",
                    )
                names[name] = actual
            # SQLite's columns are loosely typed: no SQLAlchemy processing there (values are coerced here).
            columns = [
                sa.column(actual, sa.types.NullType() if self._engine_name == "sqlite" else reflected[actual])
                for actual in names.values()
            ]
            schema, name_only = _split(full_name)
            table = sa.table(name_only, *columns, schema=schema)
            tables.plain[side] = table
            tables.aliased[side] = table.alias("m" if side is None else f"s{index}")
            tables.columns[side] = names
            tables.types[side] = {name: reflected[actual] for name, actual in names.items()}
        return tables

    def _bind(self, tables: _Tables, mapped: _Field, value: Any, spec: _Entity) -> Any:
        """`value` coerced to the type of the column that holds `mapped`."""
        type_ = tables.types[mapped.table][mapped.column]
        return coerce(
            value, type_, self._engine_name, f"{spec.name}.{mapped.name}", spec.types.get(mapped.name)
        )

    def _select(self, spec: _Entity, tables: _Tables, selected: list[_Field], sides: set[str]) -> sa.Select:
        """SELECT the fields FROM the main table LEFT JOIN the side tables in `sides` (and those selected)."""
        main = tables.aliased[None]
        joined: Any = main
        for side in sorted(sides | {item.table for item in selected if item.table}):
            column, references = spec.joins[side]
            joined = joined.outerjoin(
                tables.aliased[side], tables.read(side, column) == tables.read(None, references)
            )
        labels = [tables.read(item.table, item.column).label(item.name) for item in selected]
        return sa.select(*labels).select_from(joined)

    def _get(self, conn: Connection, spec: _Entity, tables: _Tables, key_value: Any) -> dict | None:
        selected = self._selected(spec, None)
        statement = self._select(spec, tables, selected, set()).where(
            tables.read(None, spec.key) == key_value
        )
        row = conn.execute(statement.limit(1)).mappings().first()
        return None if row is None else self._row(spec, tables, row, selected)

    @staticmethod
    def _row(spec: _Entity, tables: _Tables, row: Any, selected: list[_Field]) -> dict:
        return {
            item.name: to_json(
                row[item.name], spec.types.get(item.name), tables.types[item.table][item.column]
            )
            for item in selected
        }

    def _condition(self, spec: _Entity, tables: _Tables, mapped: _Field, op: str, value: Any) -> Any:
        column = tables.read(mapped.table, mapped.column)
        name = mapped.name
        if op == "in":
            if not isinstance(value, list | tuple) or len(value) > MAX_IN_VALUES:
                raise ClientDatabaseError(
                    f"The 'in' filter on {name} takes a list of at most {MAX_IN_VALUES}."
                )
            return column.in_([self._bind(tables, mapped, item, spec) for item in value])
        if op == "contains":
            if not isinstance(value, str):
                raise ClientDatabaseError(f"The 'contains' filter on {name} takes text.")
            # autoescape: % and _ in the text are matched as themselves, not as wildcards.
            return sa.cast(column, sa.String()).contains(value, autoescape=True)
        if value is None:
            if op in ("eq", "ne"):
                return column.is_(None) if op == "eq" else column.is_not(None)
            raise ClientDatabaseError(f"The '{op}' filter on {name} needs a value.")
        compare = {
            "eq": operator.eq,
            "ne": operator.ne,
            "lt": operator.lt,
            "lte": operator.le,
            "gt": operator.gt,
            "gte": operator.ge,
        }[op]
        return compare(column, self._bind(tables, mapped, value, spec))

    def _reference(self, conn: Connection, spec: _Entity, tables: _Tables, side: str, key_value: Any) -> Any:
        """The main-table value this row's side-table rows hold (the key, or another column)."""
        _, references = spec.joins[side]
        if references == spec.key:
            return key_value
        value = conn.execute(
            sa.select(tables.write(None, references)).where(tables.write(None, spec.key) == key_value)
        ).scalar_one_or_none()
        if value is None:
            raise ClientDatabaseError(
                f"The {spec.name} has no {references}, which its {side} rows are joined on; "
                "its fields in that table cannot be written."
            )
        return value

    def _insert_side(
        self,
        conn: Connection,
        spec: _Entity,
        tables: _Tables,
        side: str,
        reference: Any,
        side_values: list[tuple[_Field, Any]],
    ) -> None:
        row = {mapped.column: self._bind(tables, mapped, value, spec) for mapped, value in side_values}
        row[spec.joins[side][0]] = reference
        conn.execute(sa.insert(tables.plain[side]).values(tables.row(side, row)))


def client_database(*, source: DataSource, mapping: dict) -> ClientDatabase:
    """The client database behind `source`, seen through `mapping` (a FieldMapping's `spec`)."""
    return ClientDatabase(source=source, mapping=mapping, handle=handle_for(source))


def open_for_deployment(deployment: Deployment) -> ClientDatabase:
    """The deployment's client database through its field mapping, in the current client schema.

    ClientDatabaseError (not transient) when the deployment has no mapping here.
    """
    from ..models import FieldMapping

    schema = getattr(deployment, "_client_schema", None)
    if schema is not None and schema != tenant_connection().schema_name:
        raise ClientDatabaseError("This deployment belongs to another client.")
    mapping = FieldMapping.objects.select_related("data_source").filter(deployment_id=deployment.pk).first()
    if mapping is None:
        raise ClientDatabaseError(
            f"{deployment.name} has no field mapping yet: a partner engineer maps its data in the "
            "management portal (Data sources)."
        )
    return client_database(source=mapping.data_source, mapping=mapping.spec)
