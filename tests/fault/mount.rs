//! File systems that fail on purpose (root only): a tiny tmpfs that fills up, and an ext4 image
//! on a loop device that the kernel turns read-only, as it does a disk after an error
//! (`errors=remount-ro`). Each is unmounted when dropped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Mount {
    dir: PathBuf,
}

fn run(program: &str, args: &[&str]) {
    let output = Command::new(program).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Mount {
    /// A tmpfs of `size` (as `mount -o size=` takes it) on a new directory `at`.
    pub fn tmpfs(at: &Path, size: &str) -> Mount {
        std::fs::create_dir_all(at).unwrap();
        let options = format!("size={size}");
        run(
            "mount",
            &["-t", "tmpfs", "-o", &options, "tmpfs", at.to_str().unwrap()],
        );
        Mount { dir: at.to_owned() }
    }

    /// A new 32 MiB ext4 file system in the file `image`, mounted on `at` through a loop
    /// device, made to go read-only on its first error.
    pub fn ext4_image(image: &Path, at: &Path) -> Mount {
        let file = std::fs::File::create(image).unwrap();
        file.set_len(32 << 20).unwrap();
        run("mkfs.ext4", &["-q", image.to_str().unwrap()]);
        Mount::ext4_image_again(image, at)
    }

    /// Mounts an existing image again (after [`Mount::fail_read_only`] and an unmount).
    pub fn ext4_image_again(image: &Path, at: &Path) -> Mount {
        std::fs::create_dir_all(at).unwrap();
        let (image, at_str) = (image.to_str().unwrap(), at.to_str().unwrap());
        run("mount", &["-o", "loop,errors=remount-ro", image, at_str]);
        Mount { dir: at.to_owned() }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Fills the file system with one file of zeros until it has no byte left; deleting the
    /// returned file gives the space back.
    pub fn fill(&self) -> PathBuf {
        let path = self.dir.join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let block = vec![0u8; 4096];
        loop {
            match file.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(error) if error.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(error) => panic!("filling {path:?}: {error}"),
            }
        }
        let _ = file.sync_all();
        path
    }

    /// Reports an error in this ext4 file system to the kernel (`trigger_fs_error`), which
    /// then remounts it read-only at once: every write, even to a file already open, fails
    /// with EROFS, as on a disk that went bad under a running service.
    pub fn fail_read_only(&self) {
        let output = Command::new("findmnt")
            .args(["-no", "SOURCE", self.dir.to_str().unwrap()])
            .output()
            .unwrap();
        let source = String::from_utf8(output.stdout).unwrap();
        let device = Path::new(source.trim())
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        // Only ever our own loop device: the same file of the root file system's device
        // would report an error on the machine's own disk.
        assert!(
            device.starts_with("loop"),
            "{device:?} is not a loop device"
        );
        std::fs::write(
            format!("/sys/fs/ext4/{device}/trigger_fs_error"),
            "fault test\n",
        )
        .unwrap();
        let probe = std::fs::File::create(self.dir.join("probe"));
        assert!(probe.is_err(), "the file system is still writable");
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}
