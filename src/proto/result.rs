//! The response to a text-protocol command, as a state machine.
//!
//! Feed each packet to [`ResultMachine::on_packet`]; it classifies the packet
//! (OK, error, column count, column definition, row, end of rows) and tracks
//! whether further packets or further result sets follow.

use super::codec::Reader;
use super::column::{ColumnDef, parse_column_def};
use super::consts::caps;
use super::error::{ProtoError, ProtoResult};
use super::packets::{ErrPacket, OkPacket, is_eof, parse_eof, parse_err, parse_ok};

/// The most columns a result set may announce (MySQL allows 4096).
pub const MAX_COLUMNS: u64 = 65_535;

/// One classified packet of a command's response.
#[derive(Debug, PartialEq, Eq)]
pub enum ResultEvent<'a> {
    /// The statement finished without a result set.
    Ok(OkPacket<'a>),
    /// The server reported an error; the response is over.
    Err(ErrPacket<'a>),
    /// A result set with this many columns starts.
    ColumnCount(usize),
    /// One column definition.
    Column(ColumnDef),
    /// The EOF after the column definitions (old servers only); nothing to do.
    ColumnsEnd,
    /// A row: the packet's payload is the row.
    Row,
    /// The end of the rows of a result set.
    End(OkPacket<'a>),
    /// The server asks the client to send a local file (`LOAD DATA LOCAL`).
    LocalInfile(&'a [u8]),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Columns { left: u64 },
    ColumnsEof,
    Rows,
    Done,
}

/// Tracks where a command's response is.
#[derive(Debug, Clone)]
pub struct ResultMachine {
    capabilities: u32,
    state: State,
    binary: bool,
    cache_metadata: bool,
}

impl ResultMachine {
    /// A machine for a fresh command on a connection with these capabilities.
    pub fn new(capabilities: u32) -> Self {
        ResultMachine {
            capabilities,
            state: State::Start,
            binary: false,
            cache_metadata: false,
        }
    }

    /// With MariaDB's `MARIADB_CLIENT_CACHE_METADATA` negotiated, every
    /// column count carries a "metadata follows" byte; when it is 0 (an
    /// execute whose metadata did not change since the server last sent it)
    /// the rows follow at once: the caller reuses the columns it has.
    pub fn with_cache_metadata(mut self, on: bool) -> Self {
        self.cache_metadata = on;
        self
    }

    /// A machine for the response to `COM_STMT_EXECUTE`, whose rows are binary.
    pub fn binary(capabilities: u32) -> Self {
        ResultMachine {
            binary: true,
            ..Self::new(capabilities)
        }
    }

    /// True when the rows are binary-protocol rows.
    pub fn is_binary(&self) -> bool {
        self.binary
    }

    /// True once the whole response (every result set) has been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// True while rows are expected.
    pub fn in_rows(&self) -> bool {
        self.state == State::Rows
    }

    /// True while column definitions are expected.
    pub fn in_columns(&self) -> bool {
        matches!(self.state, State::Columns { .. } | State::ColumnsEof)
    }

    /// True between two result sets (after an OK or end-of-rows that said more follow).
    pub fn at_result_start(&self) -> bool {
        self.state == State::Start
    }

    /// Classifies the next packet of the response.
    pub fn on_packet<'a>(&mut self, payload: &'a [u8]) -> ProtoResult<ResultEvent<'a>> {
        match self.state {
            State::Start => match payload.first() {
                Some(0x00) => {
                    let ok = parse_ok(payload, self.capabilities)?;
                    self.state = if ok.more_results() {
                        State::Start
                    } else {
                        State::Done
                    };
                    Ok(ResultEvent::Ok(ok))
                }
                Some(0xFF) => {
                    self.state = State::Done;
                    Ok(ResultEvent::Err(parse_err(payload)?))
                }
                Some(0xFB) => {
                    // After the file is sent (or refused) the server answers with OK/ERR.
                    Ok(ResultEvent::LocalInfile(&payload[1..]))
                }
                Some(_) => {
                    let mut r = Reader::new(payload);
                    let n = r.lenenc_int("column count")?;
                    let follows = if self.cache_metadata {
                        r.u8("metadata-follows flag")?
                    } else {
                        1
                    };
                    r.finish("column count")?;
                    if n == 0 || n > MAX_COLUMNS || follows > 1 {
                        return Err(ProtoError::Invalid {
                            what: "column count",
                            detail: format!("{n} columns, metadata-follows flag {follows}"),
                        });
                    }
                    self.state = if follows == 1 {
                        State::Columns { left: n }
                    } else if self.capabilities & caps::DEPRECATE_EOF != 0 {
                        State::Rows
                    } else {
                        // Not requested without DEPRECATE_EOF; assume the EOF is still sent.
                        State::ColumnsEof
                    };
                    Ok(ResultEvent::ColumnCount(n as usize))
                }
                None => Err(ProtoError::Unexpected {
                    expected: "a command response",
                    first_byte: None,
                }),
            },
            State::Columns { left } => {
                if payload.first() == Some(&0xFF) {
                    self.state = State::Done;
                    return Ok(ResultEvent::Err(parse_err(payload)?));
                }
                let def = parse_column_def(payload)?;
                self.state = if left > 1 {
                    State::Columns { left: left - 1 }
                } else if self.capabilities & caps::DEPRECATE_EOF != 0 {
                    State::Rows
                } else {
                    State::ColumnsEof
                };
                Ok(ResultEvent::Column(def))
            }
            State::ColumnsEof => {
                parse_eof(payload)?;
                self.state = State::Rows;
                Ok(ResultEvent::ColumnsEnd)
            }
            State::Rows => {
                if payload.first() == Some(&0xFF) {
                    // E.g. the query was killed or hit a limit while streaming.
                    self.state = State::Done;
                    return Ok(ResultEvent::Err(parse_err(payload)?));
                }
                if is_eof(payload, self.capabilities) {
                    let end = if self.capabilities & caps::DEPRECATE_EOF != 0 {
                        parse_ok(payload, self.capabilities)?
                    } else {
                        let eof = parse_eof(payload)?;
                        OkPacket {
                            status: eof.status,
                            warnings: eof.warnings,
                            ..OkPacket::default()
                        }
                    };
                    self.state = if end.more_results() {
                        State::Start
                    } else {
                        State::Done
                    };
                    return Ok(ResultEvent::End(end));
                }
                Ok(ResultEvent::Row)
            }
            State::Done => Err(ProtoError::Unexpected {
                expected: "nothing (the response is complete)",
                first_byte: payload.first().copied(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::column::encode_column_def;
    use crate::proto::consts::{ColumnType, status};

    fn ok(status: u16) -> Vec<u8> {
        let mut p = vec![0, 1, 0];
        p.extend_from_slice(&status.to_le_bytes());
        p.extend_from_slice(&[0, 0]);
        p
    }

    #[test]
    fn ok_only() {
        let mut m = ResultMachine::new(caps::DEPRECATE_EOF);
        let p = ok(status::AUTOCOMMIT);
        assert!(matches!(m.on_packet(&p).unwrap(), ResultEvent::Ok(o) if o.affected_rows == 1));
        assert!(m.is_done());
        assert!(m.on_packet(&p).is_err());
    }

    #[test]
    fn result_set_deprecate_eof() {
        let mut m = ResultMachine::new(caps::DEPRECATE_EOF);
        assert_eq!(m.on_packet(&[2]).unwrap(), ResultEvent::ColumnCount(2));
        let c = encode_column_def("a", ColumnType::Long, 0, 63);
        assert!(matches!(m.on_packet(&c).unwrap(), ResultEvent::Column(_)));
        assert!(m.in_columns());
        assert!(matches!(m.on_packet(&c).unwrap(), ResultEvent::Column(_)));
        assert!(m.in_rows());
        assert_eq!(m.on_packet(&[1, b'1', 0xFB]).unwrap(), ResultEvent::Row);
        // A row whose first value has an 8-byte length prefix (a value of 16 MiB
        // or more) starts with 0xFE too: its size tells it from the end marker.
        let n = crate::proto::consts::MAX_PAYLOAD;
        let mut big = vec![0xFE];
        big.extend_from_slice(&(n as u64).to_le_bytes());
        big.resize(9 + n, b'x');
        assert_eq!(m.on_packet(&big).unwrap(), ResultEvent::Row);
        let mut end = ok(status::AUTOCOMMIT);
        end[0] = 0xFE;
        assert!(matches!(m.on_packet(&end).unwrap(), ResultEvent::End(_)));
        assert!(m.is_done());
    }

    #[test]
    fn result_set_classic_eof_and_more_results() {
        let mut m = ResultMachine::new(0);
        m.on_packet(&[1]).unwrap();
        m.on_packet(&encode_column_def("a", ColumnType::Long, 0, 63))
            .unwrap();
        assert_eq!(
            m.on_packet(&[0xFE, 0, 0, 2, 0]).unwrap(),
            ResultEvent::ColumnsEnd
        );
        assert_eq!(m.on_packet(&[1, b'7']).unwrap(), ResultEvent::Row);
        let end = [
            0xFE,
            0,
            0,
            (status::MORE_RESULTS_EXISTS | status::AUTOCOMMIT) as u8,
            0,
        ];
        assert!(matches!(m.on_packet(&end).unwrap(), ResultEvent::End(e) if e.more_results()));
        assert!(m.at_result_start());
        assert!(matches!(
            m.on_packet(&ok(status::AUTOCOMMIT)).unwrap(),
            ResultEvent::Ok(_)
        ));
        assert!(m.is_done());
    }

    #[test]
    fn errors_mid_stream_end_the_response() {
        let mut m = ResultMachine::new(caps::DEPRECATE_EOF);
        m.on_packet(&[1]).unwrap();
        m.on_packet(&encode_column_def("a", ColumnType::Long, 0, 63))
            .unwrap();
        let e = m
            .on_packet(b"\xFF\x25\x05#70100Query execution was interrupted")
            .unwrap();
        assert!(matches!(e, ResultEvent::Err(e) if e.code == 1317));
        assert!(m.is_done());
    }

    #[test]
    fn cached_metadata_is_skipped_or_follows() {
        let caps = caps::DEPRECATE_EOF;
        let mut m = ResultMachine::binary(caps).with_cache_metadata(true);
        assert_eq!(m.on_packet(&[2, 0]).unwrap(), ResultEvent::ColumnCount(2));
        assert!(m.in_rows(), "metadata skipped: rows next");
        let mut m = ResultMachine::binary(caps).with_cache_metadata(true);
        assert_eq!(m.on_packet(&[1, 1]).unwrap(), ResultEvent::ColumnCount(1));
        assert!(m.in_columns());
        assert!(
            ResultMachine::new(caps)
                .with_cache_metadata(true)
                .on_packet(&[1])
                .is_err()
        );
        assert!(
            ResultMachine::new(caps)
                .with_cache_metadata(true)
                .on_packet(&[1, 2])
                .is_err()
        );
        assert!(
            ResultMachine::new(caps).on_packet(&[1, 1]).is_err(),
            "flag only when negotiated"
        );
    }

    #[test]
    fn bad_column_counts() {
        assert!(
            ResultMachine::new(0)
                .on_packet(&[0xFC, 0xFF, 0xFF, 0])
                .is_err()
        );
        assert!(ResultMachine::new(0).on_packet(&[0xFD, 0, 0, 1]).is_err());
        assert!(ResultMachine::new(0).on_packet(&[]).is_err());
    }
}
