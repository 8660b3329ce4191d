use crate::column::Column;
use crate::error::{Error, ErrorKind, Result};
use crate::proto::consts::ColumnType;
use crate::row::{ColumnIndex, Row, RowRef};
use crate::value::{ConvError, FromValue};

/// A Rust type that a whole row converts into.
///
/// Implemented for tuples of up to 16 [`FromValue`] types (by position; the
/// row must have exactly as many columns), for [`Row`] itself, and for
/// structs with `#[derive(FromRow)]` (feature `derive`, on by default).
/// Failures are [`ErrorKind::Conversion`] errors that name the column.
///
/// `'a` is the lifetime of the row's bytes: borrowed values (`&'a str`,
/// `&'a [u8]`) come straight from the read buffer. Methods that convert
/// many rows one after another (`query_as`, `query_map`, streams) need a
/// type that borrows nothing, `T: for<'r> FromRow<'r>`; borrowing types are
/// read from one row at a time with [`RowRef::decode`].
///
/// # The derive
///
/// Each field is read from the column of the same name (exact and
/// case-sensitive, as `row.get("name")`), or from the one given with
/// `#[mysql(rename = "column")]`; a tuple struct reads its fields by
/// position. `Option<T>` fields take NULL. A struct with one lifetime
/// parameter borrows from the row with it:
///
/// ```no_run
/// use mysql_uring::FromRow;
///
/// #[derive(FromRow)]
/// struct Name<'a> {
///     id: u64,
///     name: &'a str, // borrowed from the read buffer
/// }
///
/// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
/// cnx.cmd_query("SELECT id, name FROM users").await?;
/// while let Some(row) = cnx.next_row().await? {
///     let user: Name = row.decode()?;
///     println!("{} {}", user.id, user.name);
/// }
/// # Ok(()) }
/// ```
///
/// Errors name the column and the field, e.g. ``column `price` (DOUBLE)
/// cannot be read as i32 for field `Item::price`: ...``; a column missing
/// from the result is an error that lists the result's columns.
///
/// # Implementing it by hand
///
/// ```
/// use mysql_uring::{FromRow, Result, RowRef};
///
/// struct Point {
///     x: f64,
///     y: f64,
/// }
///
/// impl<'a> FromRow<'a> for Point {
///     fn from_row(row: &RowRef<'a>) -> Result<Self> {
///         Ok(Point { x: row.get("x")?, y: row.get("y")? })
///     }
/// }
/// ```
///
/// Rows into Rust types: [`FromRow`] for tuples, [`Row`] and structs
/// (`#[derive(FromRow)]`, feature `derive`).
///
/// The trait takes the row's lifetime, so a type may borrow from the row:
/// `(u64, &'a str)` reads a streamed [`RowRef<'a>`] without copying, while
/// owned types (`(u64, String)`, structs without a lifetime) implement
/// `FromRow<'a>` for every `'a` and work everywhere, including the
/// [`Connection`](crate::Connection) methods that collect rows
/// (`query_as`, `exec_map`, ...) and row streams.
///
/// ```no_run
/// use mysql_uring::{FromRow, Result};
///
/// #[derive(FromRow)]
/// struct Item {
///     id: u64,
///     name: String,
///     #[mysql(rename = "unit_price")]
///     price: f64,
///     note: Option<String>, // NULL -> None
/// }
///
/// # async fn f(cnx: &mut mysql_uring::Connection) -> Result<()> {
/// let items: Vec<Item> = cnx.query_as("SELECT id, name, unit_price, note FROM items").await?;
/// let pairs = cnx.exec_as::<(u64, String)>("SELECT id, name FROM items WHERE id > ?", (10,)).await?;
/// # Ok(()) }
/// ```
pub trait FromRow<'a>: Sized {
    /// Converts one row.
    fn from_row(row: &RowRef<'a>) -> Result<Self>;

    /// True for [`Row`]: the connection hands over its owned row (sharing
    /// the read buffer) instead of one copied from a [`RowRef`].
    #[doc(hidden)]
    const __OWNED_ROW: bool = false;

    /// Called instead of `from_row` when `__OWNED_ROW` is true.
    #[doc(hidden)]
    #[inline]
    fn __from_owned_row(_row: Row) -> Result<Self> {
        Err(Error::usage("FromRow::__from_owned_row is only for Row"))
    }
}

/// A copy of the row ([`RowRef::to_row`]). The connection's own methods
/// (`query_as::<Row>`, `stream`) hand over the received row without copying.
impl<'a> FromRow<'a> for Row {
    #[inline]
    fn from_row(row: &RowRef<'a>) -> Result<Self> {
        Ok(row.to_row())
    }

    const __OWNED_ROW: bool = true;

    #[inline]
    fn __from_owned_row(row: Row) -> Result<Self> {
        Ok(row)
    }
}

impl<'a> RowRef<'a> {
    /// The whole row converted to `T`: a tuple, a `#[derive(FromRow)]`
    /// struct, anything [`FromRow`]. Borrowed values borrow the read buffer.
    ///
    /// ```no_run
    /// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
    /// cnx.cmd_query("SELECT id, name FROM users").await?;
    /// while let Some(row) = cnx.next_row().await? {
    ///     let (id, name): (u64, &str) = row.decode()?; // no copy, no allocation
    ///     println!("{id} {name}");
    /// }
    /// # Ok(()) }
    /// ```
    #[inline]
    pub fn decode<T: FromRow<'a>>(&self) -> Result<T> {
        T::from_row(self)
    }
}

impl Row {
    /// The whole row converted to `T` (see [`RowRef::decode`]); borrowed
    /// values borrow this row.
    ///
    /// ```no_run
    /// # async fn f(cnx: &mut mysql_uring::Connection) -> mysql_uring::Result<()> {
    /// for row in cnx.query("SELECT id, name FROM users").await? {
    ///     let (id, name): (u64, &str) = row.decode()?;
    ///     println!("{id} {name}");
    /// }
    /// # Ok(()) }
    /// ```
    #[inline]
    pub fn decode<'a, T: FromRow<'a>>(&'a self) -> Result<T> {
        T::from_row(&self.as_ref())
    }
}

macro_rules! tuple_impls {
    ($( $n:literal => ($($t:ident $i:tt),+); )+) => {$(
        impl<'a, $($t: FromValue<'a>),+> FromRow<'a> for ($($t,)+) {
            #[inline]
            fn from_row(row: &RowRef<'a>) -> Result<Self> {
                __private::check_len(row, $n, std::any::type_name::<Self>())?;
                Ok(($(__private::by_position::<$t>(row, $i, "")?,)+))
            }
        }
    )+};
}

tuple_impls! {
    1 => (A 0);
    2 => (A 0, B 1);
    3 => (A 0, B 1, C 2);
    4 => (A 0, B 1, C 2, D 3);
    5 => (A 0, B 1, C 2, D 3, E 4);
    6 => (A 0, B 1, C 2, D 3, E 4, F 5);
    7 => (A 0, B 1, C 2, D 3, E 4, F 5, G 6);
    8 => (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
    9 => (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8);
    10 => (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9);
    11 => (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10);
    12 => (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11);
    13 => (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12);
    14 => (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13);
    15 => (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13, O 14);
    16 => (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13, O 14, P 15);
}

/// What the derive's generated code calls; not a public API.
#[doc(hidden)]
pub mod __private {
    use super::*;

    /// Fails unless the row has exactly `n` columns (`what`: the target, for the message).
    #[inline(always)]
    pub fn check_len(row: &RowRef<'_>, n: usize, what: &str) -> Result<()> {
        if row.len() == n {
            Ok(())
        } else {
            Err(count_error(row, n, what))
        }
    }

    /// The value at position `i` (checked by [`check_len`]) as `T`; `field`
    /// names the struct field it is for, or is empty.
    #[inline(always)]
    pub fn by_position<'a, T: FromValue<'a>>(row: &RowRef<'a>, i: usize, field: &str) -> Result<T> {
        convert(row, i, field, &i)
    }

    /// The value of the column named `column` as `T`, for `field`
    /// (`Struct::field`).
    #[inline(always)]
    pub fn by_name<'a, T: FromValue<'a>>(row: &RowRef<'a>, column: &str, field: &str) -> Result<T> {
        match column.index(row.columns()) {
            Some(i) => convert(row, i, field, &column),
            None => Err(missing_column(row, column, field)),
        }
    }
}

/// The value at `i` (a valid position) as `T`.
#[inline(always)]
fn convert<'a, T: FromValue<'a>>(
    row: &RowRef<'a>,
    i: usize,
    field: &str,
    idx: &dyn ColumnIndex,
) -> Result<T> {
    let (value, col) = match (row.get_raw(i), row.columns().get(i)) {
        (Ok(v), Some(col)) => (v, col),
        (Err(e), _) => return Err(e),
        (Ok(_), None) => return Err(count_error(row, i + 1, std::any::type_name::<T>())),
    };
    let r = if row.is_binary() {
        T::from_binary(value, col)
    } else {
        T::from_text(value, col)
    };
    match r {
        Ok(t) => Ok(t),
        Err(e) => Err(conversion_error(idx, col, field, e)),
    }
}

/// ``column `price` (DOUBLE) cannot be read as i32 for field `Item::price`: reason``;
/// by position: ``column 2 (`price`, DOUBLE) cannot be read as i32: reason``.
#[cold]
#[inline(never)]
fn conversion_error(idx: &dyn ColumnIndex, col: &Column, field: &str, e: ConvError) -> Error {
    let what = idx.describe();
    let column = if what.contains('`') {
        format!("{what} ({})", sql_type(col))
    } else {
        format!("{what} (`{}`, {})", col.name(), sql_type(col))
    };
    let field = if field.is_empty() {
        String::new()
    } else {
        format!(" for field `{field}`")
    };
    Error::new(
        ErrorKind::Conversion,
        format!(
            "{column} cannot be read as {}{field}: {}",
            e.target, e.reason
        ),
    )
}

/// ``(u64, u64) cannot be read from this row: expected 2 columns, got 3 (`a`, `b`, `c`)``.
#[cold]
#[inline(never)]
fn count_error(row: &RowRef<'_>, expected: usize, what: &str) -> Error {
    Error::new(
        ErrorKind::Conversion,
        format!(
            "{what} cannot be read from this row: expected {expected} columns, got {} ({})",
            row.len(),
            column_list(row)
        ),
    )
}

#[cold]
#[inline(never)]
fn missing_column(row: &RowRef<'_>, column: &str, field: &str) -> Error {
    Error::new(
        ErrorKind::Conversion,
        format!(
            "no column `{column}` for field `{field}` in the result; its columns are: {} \
             (names are case-sensitive; #[mysql(rename = \"...\")] reads another column)",
            column_list(row)
        ),
    )
}

fn column_list(row: &RowRef<'_>) -> String {
    row.columns()
        .iter()
        .map(|c| format!("`{}`", c.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The column's type as SQL spells it, e.g. `BIGINT UNSIGNED`, `VARCHAR`, `BLOB`.
fn sql_type(col: &Column) -> String {
    use ColumnType::*;
    let Some(t) = col.column_type() else {
        return format!("type 0x{:02x}", col.type_byte());
    };
    let name = match t {
        Decimal | NewDecimal => "DECIMAL",
        Tiny => "TINYINT",
        Short => "SMALLINT",
        Int24 => "MEDIUMINT",
        Long => "INT",
        LongLong => "BIGINT",
        Float => "FLOAT",
        Double => "DOUBLE",
        Null => "NULL",
        Timestamp | Timestamp2 => "TIMESTAMP",
        Date | NewDate => "DATE",
        Time | Time2 => "TIME",
        DateTime | DateTime2 => "DATETIME",
        Year => "YEAR",
        Bit => "BIT",
        Json => "JSON",
        Enum => "ENUM",
        Set => "SET",
        Geometry => "GEOMETRY",
        VarChar | VarString if col.is_binary() => "VARBINARY",
        VarChar | VarString => "VARCHAR",
        String if col.is_binary() => "BINARY",
        String => "CHAR",
        TinyBlob | MediumBlob | LongBlob | Blob if col.is_binary() => "BLOB",
        TinyBlob | MediumBlob | LongBlob | Blob => "TEXT",
    };
    let int = matches!(t, Tiny | Short | Int24 | Long | LongLong);
    if int && col.is_unsigned() {
        format!("{name} UNSIGNED")
    } else {
        name.to_string()
    }
}
