//! Column definitions (protocol 4.1), decoded without copying their strings.

use std::ops::Range;

use super::codec::Reader;
use super::consts::ColumnType;
use super::error::{ProtoError, ProtoResult};

/// A column definition whose names are ranges into the packet it came from.
///
/// Resolve the ranges against that packet with [`ColumnDef::slice`]. Keeping
/// ranges instead of strings lets the IO layer share the packet bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDef {
    /// Database name.
    pub schema: Range<u32>,
    /// Table alias.
    pub table: Range<u32>,
    /// Original table name.
    pub org_table: Range<u32>,
    /// Column alias.
    pub name: Range<u32>,
    /// Original column name.
    pub org_name: Range<u32>,
    /// Collation id (63 = binary).
    pub charset: u16,
    /// Maximum display length.
    pub length: u32,
    /// Raw type byte.
    pub type_byte: u8,
    /// Column flags ([`super::consts::column_flags`]).
    pub flags: u16,
    /// Decimal digits.
    pub decimals: u8,
}

impl ColumnDef {
    /// The column type, if the byte is one this client knows.
    pub fn column_type(&self) -> Option<ColumnType> {
        ColumnType::from_u8(self.type_byte)
    }

    /// Resolves one of the ranges against the packet the definition came from.
    pub fn slice<'p>(packet: &'p [u8], r: &Range<u32>) -> &'p [u8] {
        packet.get(r.start as usize..r.end as usize).unwrap_or(&[])
    }
}

fn range(r: &mut Reader<'_>, what: &'static str) -> ProtoResult<Range<u32>> {
    let s = r.lenenc_bytes(what)?;
    let end = r.pos();
    let start = end - s.len();
    Ok(start as u32..end as u32)
}

/// Parses a column definition packet.
pub fn parse_column_def(payload: &[u8]) -> ProtoResult<ColumnDef> {
    if payload.len() > u32::MAX as usize {
        return Err(ProtoError::Invalid {
            what: "column definition",
            detail: "longer than 4 GiB".into(),
        });
    }
    let mut r = Reader::new(payload);
    let catalog = r.lenenc_bytes("column catalog")?;
    if catalog != b"def" {
        return Err(ProtoError::Invalid {
            what: "column definition",
            detail: format!(
                "catalog is {:?}, expected \"def\"",
                String::from_utf8_lossy(catalog)
            ),
        });
    }
    let schema = range(&mut r, "column schema")?;
    let table = range(&mut r, "column table")?;
    let org_table = range(&mut r, "column org_table")?;
    let name = range(&mut r, "column name")?;
    let org_name = range(&mut r, "column org_name")?;
    let fixed = r.lenenc_int("column fixed-length fields")?;
    if fixed < 0x0C {
        return Err(ProtoError::Invalid {
            what: "column definition",
            detail: format!("fixed-length block of {fixed} bytes, expected 12"),
        });
    }
    let charset = r.u16("column charset")?;
    let length = r.u32("column length")?;
    let type_byte = r.u8("column type")?;
    let flags = r.u16("column flags")?;
    let decimals = r.u8("column decimals")?;
    // Two filler bytes, then (COM_FIELD_LIST only) default values: ignored.
    r.skip(2, "column filler")?;
    Ok(ColumnDef {
        schema,
        table,
        org_table,
        name,
        org_name,
        charset,
        length,
        type_byte,
        flags,
        decimals,
    })
}

#[cfg(test)]
pub(crate) fn encode_column_def(name: &str, ty: ColumnType, flags: u16, charset: u16) -> Vec<u8> {
    use super::codec::put_lenenc_bytes;
    let mut p = Vec::new();
    for s in ["def", "test", "t", "t", name, name] {
        put_lenenc_bytes(&mut p, s.as_bytes());
    }
    p.push(0x0C);
    p.extend_from_slice(&charset.to_le_bytes());
    p.extend_from_slice(&255u32.to_le_bytes());
    p.push(ty as u8);
    p.extend_from_slice(&flags.to_le_bytes());
    p.push(0);
    p.extend_from_slice(&[0, 0]);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_column_definition() {
        let p = encode_column_def("price", ColumnType::Float, 0, 63);
        let c = parse_column_def(&p).unwrap();
        assert_eq!(ColumnDef::slice(&p, &c.name), b"price");
        assert_eq!(ColumnDef::slice(&p, &c.schema), b"test");
        assert_eq!(c.column_type(), Some(ColumnType::Float));
        assert_eq!(c.charset, 63);
        assert_eq!(c.length, 255);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let p = encode_column_def("servings", ColumnType::Long, 32, 63);
        for cut in 0..p.len() {
            assert!(parse_column_def(&p[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn wrong_catalog_is_rejected() {
        let mut p = encode_column_def("x", ColumnType::Long, 0, 63);
        p[1] = b'x';
        assert!(parse_column_def(&p).is_err());
    }
}
