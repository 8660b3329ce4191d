use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use smallvec::SmallVec;

use crate::column::{Column, NameKey};
use crate::error::{Error, ErrorKind, Result};
use crate::proto::row::FieldRange;
use crate::value::{FromValue, share};

/// Value positions of one row; inline for up to 12 columns.
pub(crate) type Fields = SmallVec<[FieldRange; 12]>;

/// Selects a column by position (`usize`) or by name (`&str`).
pub trait ColumnIndex {
    /// The position of the column in `columns`, if any.
    fn index(&self, columns: &[Column]) -> Option<usize>;
    /// How to name the column in an error.
    fn describe(&self) -> String;
}

impl ColumnIndex for usize {
    #[inline(always)]
    fn index(&self, columns: &[Column]) -> Option<usize> {
        (*self < columns.len()).then_some(*self)
    }
    fn describe(&self) -> String {
        format!("column {self}")
    }
}

/// By name: the first column whose name is exactly this string (case
/// sensitive). Each column carries a fingerprint of its name computed when the
/// result's metadata arrived, so a lookup hashes the string once and compares
/// one integer per column: no UTF-8 check, no string comparison except to
/// confirm a match of a name longer than 7 bytes.
impl ColumnIndex for &str {
    #[inline]
    fn index(&self, columns: &[Column]) -> Option<usize> {
        let name = self.as_bytes();
        let key = NameKey::of(name);
        columns.iter().position(|c| c.has_name(key, name))
    }
    fn describe(&self) -> String {
        format!("column `{self}`")
    }
}

/// A row borrowed from the connection's read buffer (valid until the next read).
#[derive(Clone, Copy)]
pub struct RowRef<'a> {
    packet: &'a [u8],
    fields: &'a [FieldRange],
    columns: &'a [Column],
    binary: bool,
}

impl<'a> RowRef<'a> {
    pub(crate) fn new(packet: &'a [u8], fields: &'a [FieldRange], columns: &'a [Column]) -> Self {
        RowRef {
            packet,
            fields,
            columns,
            binary: false,
        }
    }

    /// A row of the binary protocol (from a prepared statement) when `binary`.
    pub(crate) fn with_protocol(mut self, binary: bool) -> Self {
        self.binary = binary;
        self
    }

    /// True for a row of the binary protocol (from a prepared statement).
    pub fn is_binary(&self) -> bool {
        self.binary
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// True for a row without values (never produced by a server).
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The result set's columns.
    pub fn columns(&self) -> &'a [Column] {
        self.columns
    }

    /// The value at `idx` converted to `T`. NULL converts only to `Option<_>`.
    ///
    /// Errors name the column, the value and the requested type.
    #[inline(always)]
    pub fn get<T: FromValue<'a>>(&self, idx: impl ColumnIndex) -> Result<T> {
        let (v, col) = self.locate(&idx)?;
        let r = if self.binary {
            T::from_binary(v, col)
        } else {
            T::from_text(v, col)
        };
        match r {
            Ok(t) => Ok(t),
            Err(e) => Err(conversion_error(idx.describe(), col, e)),
        }
    }

    /// The raw bytes of the value at `idx` (`None` for NULL), or an error for a bad index.
    /// In a binary row these are the wire form (e.g. 8 little-endian bytes for BIGINT).
    #[inline]
    pub fn get_raw(&self, idx: impl ColumnIndex) -> Result<Option<&'a [u8]>> {
        Ok(self.locate(&idx)?.0)
    }

    /// True when the value at `idx` is NULL (or the index is out of range).
    pub fn is_null(&self, idx: impl ColumnIndex) -> bool {
        idx.index(self.columns)
            .and_then(|i| self.fields.get(i))
            .is_none_or(|f| f.is_null())
    }

    /// Copies the row into an owned [`Row`].
    pub fn to_row(&self) -> Row {
        Row {
            packet: Bytes::copy_from_slice(self.packet),
            fields: self.fields.iter().copied().collect(),
            columns: Arc::from(self.columns.to_vec()),
            binary: self.binary,
        }
    }

    /// The value at `idx` and its column: a bounds check for a position.
    #[inline(always)]
    fn locate(&self, idx: &impl ColumnIndex) -> Result<(Option<&'a [u8]>, &'a Column)> {
        let i = idx.index(self.columns);
        match i.and_then(|i| Some((self.fields.get(i)?, self.columns.get(i)?))) {
            Some((f, col)) => Ok((f.get(self.packet), col)),
            None => Err(self.missing(idx.describe())),
        }
    }

    #[cold]
    #[inline(never)]
    fn missing(&self, what: String) -> Error {
        Error::usage(format!(
            "{what} does not exist; the result has {} columns: {}",
            self.columns.len(),
            self.columns
                .iter()
                .map(|c| c.name())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

/// The error of a failed conversion, naming the column (kept out of line so
/// that `get` stays small enough to inline).
#[cold]
#[inline(never)]
fn conversion_error(what: String, col: &Column, e: crate::value::ConvError) -> Error {
    Error::new(
        ErrorKind::Conversion,
        format!(
            "{what} (`{}`, {:?}) cannot be read as {}: {}",
            col.name(),
            col.column_type(),
            e.target,
            e.reason
        ),
    )
}

impl fmt::Debug for RowRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (c, v) in self.columns.iter().zip(self.fields) {
            if self.binary {
                match crate::value::Value::from_binary(v.get(self.packet), c) {
                    Ok(crate::value::Value::Bytes(b)) => match String::from_utf8(b) {
                        Ok(s) => m.entry(&c.name(), &s),
                        Err(e) => m.entry(&c.name(), &e.into_bytes()),
                    },
                    Ok(v) => m.entry(&c.name(), &v),
                    Err(e) => m.entry(&c.name(), &e.reason),
                };
                continue;
            }
            match v.get(self.packet) {
                None => m.entry(&c.name(), &None::<()>),
                Some(b) => match std::str::from_utf8(b) {
                    Ok(s) => m.entry(&c.name(), &s),
                    Err(_) => m.entry(&c.name(), &b),
                },
            };
        }
        m.finish()
    }
}

/// An owned row. Its bytes are shared with the buffer they were read into,
/// so keeping rows alive keeps that buffer alive; converting values copies
/// nothing until you ask for an owned type like `String`.
///
/// Rows: the received packet plus where each value lies in it.
///
/// [`Row`] owns its packet as [`Bytes`] that share the connection's read
/// buffer; [`RowRef`] borrows the buffer directly and is what streaming reads
/// hand out. Neither copies a value: `get::<&str>` borrows, `get::<i64>`
/// parses in place.
#[derive(Clone)]
pub struct Row {
    packet: Bytes,
    fields: Fields,
    columns: Arc<[Column]>,
    binary: bool,
}

impl Row {
    pub(crate) fn new(packet: Bytes, fields: Fields, columns: Arc<[Column]>) -> Self {
        Row {
            packet,
            fields,
            columns,
            binary: false,
        }
    }

    /// A row of the binary protocol (from a prepared statement) when `binary`.
    pub(crate) fn with_protocol(mut self, binary: bool) -> Self {
        self.binary = binary;
        self
    }

    /// A borrowed view of this row.
    #[inline]
    pub fn as_ref(&self) -> RowRef<'_> {
        RowRef::new(&self.packet, &self.fields, &self.columns).with_protocol(self.binary)
    }

    /// True for a row of the binary protocol (from a prepared statement).
    pub fn is_binary(&self) -> bool {
        self.binary
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// True for a row without values (never produced by a server).
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The result set's columns.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The value at `idx` (position or column name) converted to `T`.
    ///
    /// ```no_run
    /// # async fn f(row: mysql_uring::Row) -> mysql_uring::Result<()> {
    /// let id: u64 = row.get(0)?;
    /// let name: &str = row.get("name")?;         // borrows, no copy
    /// let price: Option<f64> = row.get("price")?; // NULL -> None
    /// # Ok(()) }
    /// ```
    #[inline(always)]
    pub fn get<'a, T: FromValue<'a>>(&'a self, idx: impl ColumnIndex) -> Result<T> {
        self.as_ref().get(idx)
    }

    /// The raw bytes of the value at `idx` (`None` for NULL).
    pub fn get_raw(&self, idx: impl ColumnIndex) -> Result<Option<&[u8]>> {
        self.as_ref().get_raw(idx)
    }

    /// The value at `idx` as [`Bytes`] sharing this row's buffer (no copy).
    pub fn get_bytes(&self, idx: impl ColumnIndex) -> Result<Option<Bytes>> {
        Ok(self.as_ref().get_raw(idx)?.map(|v| share(&self.packet, v)))
    }

    /// True when the value at `idx` is NULL.
    pub fn is_null(&self, idx: impl ColumnIndex) -> bool {
        self.as_ref().is_null(idx)
    }

    /// The row as a map of column name to [`Value`](crate::Value), in
    /// column order: the rows of Connector/Python's dictionary cursor.
    /// Costs one `Vec` plus the values' own allocations (text and bytes are
    /// copied); the names are shared with the result's columns, not copied.
    /// For single values, [`Row::get`] with a name is cheaper.
    ///
    /// ```no_run
    /// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
    /// use mysql_uring::Value;
    /// for row in cnx.query("SELECT id, name FROM users").await? {
    ///     let map = row.to_map()?;
    ///     if let Some(Value::Bytes(name)) = map.get("name") {
    ///         println!("{:?} -> {}", map["id"], String::from_utf8_lossy(name));
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn to_map(&self) -> Result<RowMap> {
        let values = (0..self.len())
            .map(|i| self.get::<crate::value::Value>(i))
            .collect::<Result<Vec<_>>>()?;
        Ok(RowMap {
            columns: self.columns.clone(),
            values,
        })
    }
}

/// A row as an ordered map of column name to [`Value`](crate::Value); see
/// [`Row::to_map`]. Iterates in column order. A name that several columns
/// share (e.g. `SELECT a.id, b.id`) appears once per column; [`RowMap::get`]
/// returns the first, as [`Row::get`] does.
#[derive(Clone)]
pub struct RowMap {
    columns: Arc<[Column]>,
    values: Vec<crate::value::Value>,
}

impl RowMap {
    /// The value of the first column named `name` (case sensitive).
    pub fn get(&self, name: &str) -> Option<&crate::value::Value> {
        name.index(&self.columns).map(|i| &self.values[i])
    }

    /// True when a column is named `name`.
    pub fn contains_key(&self, name: &str) -> bool {
        name.index(&self.columns).is_some()
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True for a map without columns.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `(name, value)` pairs in column order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &crate::value::Value)> {
        self.columns.iter().map(Column::name).zip(&self.values)
    }

    /// The column names, in order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &str> {
        self.columns.iter().map(Column::name)
    }

    /// The values, in column order.
    pub fn values(&self) -> &[crate::value::Value] {
        &self.values
    }

    /// The values, in column order, without the names.
    pub fn into_values(self) -> Vec<crate::value::Value> {
        self.values
    }

    /// The result set's columns.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }
}

/// `map["name"]`: the value of the first column so named.
///
/// # Panics
/// When no column has that name (use [`RowMap::get`] to check).
impl std::ops::Index<&str> for RowMap {
    type Output = crate::value::Value;
    fn index(&self, name: &str) -> &Self::Output {
        match self.get(name) {
            Some(v) => v,
            None => panic!(
                "no column named `{name}`; the row has: {}",
                self.keys().collect::<Vec<_>>().join(", ")
            ),
        }
    }
}

/// Equal when the names and the values are equal, in the same order.
impl PartialEq for RowMap {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl fmt::Debug for RowMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for &'a RowMap {
    type Item = (&'a str, &'a crate::value::Value);
    type IntoIter = Box<dyn ExactSizeIterator<Item = Self::Item> + 'a>;
    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

impl fmt::Debug for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_ref().fmt(f)
    }
}
