//! Container logs in the CRI format (`<time> <stream> <P|F> <text>`) as `kubectl logs` wants
//! them: text only or with timestamps, the last N lines, since a time, and followed live.

use bytes::Bytes;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncSeekExt, BufReader};
use tokio::sync::mpsc;

#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub follow: bool,
    pub tail_lines: Option<usize>,
    pub timestamps: bool,
    pub since: Option<jiff::Timestamp>,
    pub limit_bytes: Option<usize>,
}

/// One line of a CRI log: (time, stream, partial, text without the newline).
pub fn parse_line(line: &str) -> Option<(&str, &str, bool, &str)> {
    let (time, rest) = line.split_once(' ')?;
    let (stream, rest) = rest.split_once(' ')?;
    let (tag, text) = rest.split_once(' ').unwrap_or((rest, ""));
    let partial = tag.split(':').any(|t| t == "P");
    Some((time, stream, partial, text))
}

/// Whole log lines of a file (partial pieces joined), as (time, text).
fn lines(content: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(String, String)> = None;
    for raw in content.lines() {
        let Some((time, _stream, partial, text)) = parse_line(raw) else {
            continue;
        };
        let entry = pending.get_or_insert_with(|| (time.to_string(), String::new()));
        entry.1.push_str(text);
        if !partial && let Some(done) = pending.take() {
            out.push(done);
        }
    }
    out
}

fn render(time: &str, text: &str, timestamps: bool) -> String {
    if timestamps {
        format!("{time} {text}\n")
    } else {
        format!("{text}\n")
    }
}

fn wanted(opts: &LogOptions, time: &str) -> bool {
    match opts.since {
        Some(since) => time.parse::<jiff::Timestamp>().is_ok_and(|t| t >= since),
        None => true,
    }
}

/// Streams the log at `path`. With `follow`, keeps reading until `running` says the container
/// stopped and the file is drained, or the receiver goes away.
pub fn stream(
    path: PathBuf,
    opts: LogOptions,
    running: impl Fn() -> bool + Send + 'static,
) -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let content = tokio::fs::read_to_string(&path).await.unwrap_or_default();
        let mut sent = 0usize;
        let mut all: Vec<(String, String)> = lines(&content)
            .into_iter()
            .filter(|(t, _)| wanted(&opts, t))
            .collect();
        if let Some(n) = opts.tail_lines {
            let skip = all.len().saturating_sub(n);
            all.drain(..skip);
        }
        for (time, text) in all {
            let chunk = render(&time, &text, opts.timestamps);
            sent += chunk.len();
            if opts.limit_bytes.is_some_and(|l| sent > l)
                || tx.send(Bytes::from(chunk)).await.is_err()
            {
                return;
            }
        }
        if !opts.follow {
            return;
        }
        // Follow from where the first read ended.
        let Ok(file) = tokio::fs::File::open(&path).await else {
            return;
        };
        let mut reader = BufReader::new(file);
        if reader
            .seek(std::io::SeekFrom::Start(content.len() as u64))
            .await
            .is_err()
        {
            return;
        }
        let mut partial = String::new();
        let mut buf = String::new();
        loop {
            buf.clear();
            match reader.read_line(&mut buf).await {
                Ok(0) => {
                    if !running() {
                        return;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                        _ = tx.closed() => return,
                    }
                }
                Ok(_) => {
                    let Some((time, _, is_partial, text)) = parse_line(buf.trim_end_matches('\n'))
                    else {
                        continue;
                    };
                    partial.push_str(text);
                    if is_partial {
                        continue;
                    }
                    let chunk = render(time, &std::mem::take(&mut partial), opts.timestamps);
                    sent += chunk.len();
                    if opts.limit_bytes.is_some_and(|l| sent > l)
                        || tx.send(Bytes::from(chunk)).await.is_err()
                    {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_partial_lines() {
        let text = "2026-01-01T00:00:00.1Z stdout P hel\n2026-01-01T00:00:00.2Z stdout F lo\n2026-01-01T00:00:01Z stderr F oops\n";
        let l = lines(text);
        assert_eq!(
            l,
            vec![
                ("2026-01-01T00:00:00.1Z".into(), "hello".into()),
                ("2026-01-01T00:00:01Z".into(), "oops".into())
            ]
        );
        assert_eq!(
            render(&l[0].0, &l[0].1, true),
            "2026-01-01T00:00:00.1Z hello\n"
        );
    }

    #[tokio::test]
    async fn tail_and_follow() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("0.log");
        std::fs::write(
            &path,
            "2026-01-01T00:00:00Z stdout F a\n2026-01-01T00:00:01Z stdout F b\n",
        )
        .expect("write");
        let alive = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let a = alive.clone();
        let mut rx = stream(
            path.clone(),
            LogOptions {
                follow: true,
                tail_lines: Some(1),
                ..Default::default()
            },
            move || a.load(std::sync::atomic::Ordering::SeqCst),
        );
        assert_eq!(rx.recv().await.expect("line"), Bytes::from("b\n"));
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open");
        writeln!(f, "2026-01-01T00:00:02Z stdout F c").expect("append");
        assert_eq!(rx.recv().await.expect("followed"), Bytes::from("c\n"));
        alive.store(false, std::sync::atomic::Ordering::SeqCst);
        assert!(rx.recv().await.is_none(), "ends when the container stops");
    }
}
