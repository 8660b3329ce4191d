//! Pipelines: several queries written at once, their replies read in order.

use super::{Connection, StageOutput};
use crate::error::{Error, Result};
use crate::proto::command::write_query;
use crate::session::{Reply, Stake};
use crate::trace::traced;

impl Connection {
    /// Runs `sqls` pipelined: every query is written in one operation before
    /// the first reply is read; replies are read in order. See [`crate::Pipeline`].
    pub(crate) async fn run_pipeline(
        &mut self,
        sqls: &[String],
    ) -> Result<Vec<Result<StageOutput>>> {
        let op = crate::trace::Op::Pipeline(sqls);
        timed!(
            self,
            "the pipeline",
            traced(op),
            self.run_pipeline_inner(sqls)
        )
    }

    async fn run_pipeline_inner(&mut self, sqls: &[String]) -> Result<Vec<Result<StageOutput>>> {
        self.settle().await?;
        {
            let (framer, out) = self.chan.encoder()?;
            let start = out.len();
            for sql in sqls {
                if let Err(e) = write_query(framer, out, sql.as_bytes()) {
                    // Nothing of the pipeline goes out.
                    out.truncate(start);
                    framer.forget_starts_from(start);
                    return Err(e.into());
                }
            }
        }
        // Every stage's reply is owed from here on: abandoned midway, the
        // next command reads the rest first.
        for _ in sqls {
            let machine = self.result_machine();
            self.session
                .expect(Reply::result(machine, None), Stake::Statement);
        }
        let mut results = Vec::with_capacity(sqls.len());
        // Once the connection is lost, what that means for every stage
        // whose reply never came (they were all sent).
        let mut lost: Option<crate::session::Loss> = None;
        for i in 0..sqls.len() {
            if let Some(loss) = lost {
                let e = Error::broken(format!(
                    "the connection was lost before stage {i}'s reply (the stage was sent)"
                ));
                results.push(Err(self.with_loss(e, loss)));
                continue;
            }
            let seq = self.session.front_seq();
            let stage = self.read_stage().await;
            // Anything left of this stage (further result sets) is read before the next one.
            let rest = match seq {
                Some(seq) => self.consume_reply(seq, true).await,
                None => Ok(()),
            };
            let stage = match (stage, rest) {
                (Ok(out), Ok(())) => Ok(out),
                (Err(e), _) | (Ok(_), Err(e)) => Err(e),
            };
            let stage = match stage {
                Err(e) if self.chan.is_broken() => {
                    // This stage's reply and every later one are gone.
                    let loss = self.session.lost(seq.unwrap_or(u64::MAX));
                    lost = Some(loss);
                    Err(self.with_loss(e, loss))
                }
                stage => stage,
            };
            results.push(stage);
        }
        Ok(results)
    }
}
