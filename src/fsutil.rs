//! Private files on disk (the token cache, cached key sets): directories 0700 and files 0600 from the
//! moment they exist, written atomically (temporary file, fsync, rename) so no reader sees a torn file.
//!
//! A cache directory that already exists is trusted only when this user owns it and no one else can write
//! to it: in a shared one (`IDTOK_CACHE_DIR=/tmp/cache`), whoever created it first could have planted a
//! token or a key set of their own.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::log::Log;
use crate::settings::Env;

/// `IDTOK_CACHE_DIR`, else the platform cache directory's `idtok/`.
pub fn cache_dir(env: &Env) -> Option<PathBuf> {
    env.cache_dir
        .clone()
        .or_else(|| dirs::cache_dir().map(|d| d.join("idtok")))
}

/// Creates the directory (and parents) with mode 0700 on Unix.
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Why an existing directory cannot be trusted with cache entries, if it cannot: it belongs to another
/// user, or others can write to it. A directory that does not exist (yet) is no reason: idtok creates it
/// 0700, and checks again before it writes.
#[cfg(unix)]
pub fn untrusted_dir(dir: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(dir).ok().filter(|m| m.is_dir())?;
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Some(format!(
            "it is owned by uid {}, not by you (uid {me}); use a directory of your own",
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o7777;
    (mode & 0o022 != 0).then(|| {
        format!(
            "it is writable by others (mode {mode:o}); make it private: chmod 700 {}",
            dir.display()
        )
    })
}

#[cfg(not(unix))]
pub fn untrusted_dir(_dir: &Path) -> Option<String> {
    None
}

/// Whether every one of `dirs` can be trusted; the first that cannot is named in a warning (always shown:
/// a cache that is silently off would hide an attack).
pub fn trusted_dirs(dirs: &[&Path], log: Log) -> bool {
    for dir in dirs {
        if let Some(why) = untrusted_dir(dir) {
            log.warn(&format!(
                "not using the cache directory {}: {why}",
                dir.display()
            ));
            return false;
        }
    }
    true
}

/// Writes `bytes` to `path` atomically, as a file of mode 0600, into a directory that can be trusted.
pub fn write_private_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("no parent directory"))?;
    ensure_private_dir(dir)?;
    if let Some(why) = untrusted_dir(dir) {
        return Err(io::Error::other(why));
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("entry");
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = dir.join(format!(".{name}.{}.{nonce}.tmp", std::process::id()));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let result = (|| {
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Reads a file of at most `max` bytes; a larger one is an error, a missing one `Ok(None)`.
pub fn read_limited(path: &Path, max: u64) -> io::Result<Option<Vec<u8>>> {
    let Some(file) = open(path, OpenOptions::new().read(true))? else {
        return Ok(None);
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    read_open(file, len, max).map(Some)
}

/// Like `read_limited`, for files that must be regular files (credentials, gcloud's configuration, subject
/// tokens, certificates): a FIFO, a device, a socket or a directory is refused with
/// `io::ErrorKind::InvalidInput` before a byte is read. The file is opened non-blocking, so that a FIFO
/// nobody writes to cannot hang the command past its deadline (opening one for reading blocks until a
/// writer comes).
pub fn read_regular_limited(path: &Path, max: u64) -> io::Result<Option<Vec<u8>>> {
    let Some((file, meta)) = open_nonblocking(path)? else {
        return Ok(None);
    };
    if !meta.is_file() {
        return Err(not_regular(meta.file_type()));
    }
    read_open(file, meta.len(), max).map(Some)
}

/// Like `read_regular_limited`, for a cache entry: one that others could have written or read (any group or
/// other permission bit, on Unix) is refused with `io::ErrorKind::PermissionDenied`. idtok writes entries
/// 0600, so a looser mode means someone else had a hand in it.
pub fn read_private_limited(path: &Path, max: u64) -> io::Result<Option<Vec<u8>>> {
    let Some((file, meta)) = open_nonblocking(path)? else {
        return Ok(None);
    };
    if !meta.is_file() {
        return Err(not_regular(meta.file_type()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("mode {mode:o} is not private"),
            ));
        }
    }
    read_open(file, meta.len(), max).map(Some)
}

/// Like `read_regular_limited`, but a pipe or a character device (`<(vault read ...)`, `/dev/stdin`) is read
/// too, without ever blocking past `deadline`: the file is opened non-blocking and polled, so a FIFO that no
/// one writes to reads as empty at once, and a writer that never finishes ends in `io::ErrorKind::TimedOut`.
/// Directories, sockets and block devices are refused with `io::ErrorKind::InvalidInput`.
pub fn read_streamable_limited(
    path: &Path,
    max: u64,
    deadline: Option<std::time::Instant>,
) -> io::Result<Option<Vec<u8>>> {
    let Some((file, meta)) = open_nonblocking(path)? else {
        return Ok(None);
    };
    if meta.is_file() {
        return read_open(file, meta.len(), max).map(Some);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let kind = meta.file_type();
        if kind.is_fifo() || kind.is_char_device() {
            return read_polling(file, max, deadline).map(Some);
        }
    }
    Err(not_regular(meta.file_type()))
}

/// Opens `path`; a missing file is `Ok(None)`.
fn open(path: &Path, options: &OpenOptions) -> io::Result<Option<File>> {
    match options.open(path) {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Opens `path` for reading without blocking on a FIFO, with what it is (from the open file, so the answer
/// is about what will be read); a missing file is `Ok(None)`.
fn open_nonblocking(path: &Path) -> io::Result<Option<(File, fs::Metadata)>> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let Some(file) = open(path, &options)? else {
        return Ok(None);
    };
    let meta = file.metadata()?;
    Ok(Some((file, meta)))
}

fn not_regular(kind: fs::FileType) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("not a regular file ({})", describe_type(kind)),
    )
}

/// Reads a non-blocking pipe or device to its end, waiting for data in short sleeps until `deadline`.
#[cfg(unix)]
fn read_polling(
    mut file: File,
    max: u64,
    deadline: Option<std::time::Instant>,
) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match file.read(&mut chunk) {
            Ok(0) => return Ok(bytes),
            Ok(n) => {
                bytes.extend_from_slice(&chunk[..n]);
                if bytes.len() as u64 > max {
                    return Err(too_large(max));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "nothing more was written to it within --timeout",
                    ));
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// What a file that is not a regular file is, in words.
fn describe_type(kind: fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO or pipe";
        }
        if kind.is_socket() {
            return "a socket";
        }
        if kind.is_char_device() || kind.is_block_device() {
            return "a device";
        }
    }
    if kind.is_dir() {
        "a directory"
    } else {
        "not a plain file"
    }
}

/// Reads at most `max` bytes of a file whose length is `len` (sized from it, so that a small file is read in
/// one call); more is an error.
fn read_open(file: File, len: u64, max: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(len.min(max) as usize + 1);
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_large(max));
    }
    Ok(bytes)
}

fn too_large(max: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("larger than {max} bytes"),
    )
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn files_are_private_and_replaced_whole() {
        let dir = std::env::temp_dir().join(format!("idtok-fsutil-{}", std::process::id()));
        let path = dir.join("sub").join("entry.json");
        write_private_atomic(&path, b"one").unwrap();
        write_private_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
        assert!(read_limited(&path, 2).is_err());
        assert_eq!(read_limited(&dir.join("missing"), 2).unwrap(), None);
        assert_eq!(read_regular_limited(&path, 3).unwrap().unwrap(), b"two");
        assert_eq!(read_regular_limited(&dir.join("missing"), 2).unwrap(), None);
        let refused = read_regular_limited(&dir, 2).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::InvalidInput);
        assert!(refused.to_string().contains("a directory"), "{refused}");
        let refused = read_regular_limited(Path::new("/dev/null"), 2).unwrap_err();
        assert!(refused.to_string().contains("a device"), "{refused}");
        assert_eq!(read_private_limited(&path, 3).unwrap().unwrap(), b"two");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let refused = read_private_limited(&path, 3).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::PermissionDenied);
        assert!(refused.to_string().contains("mode 640"), "{refused}");
        fs::remove_dir_all(dir).unwrap();
    }
}
