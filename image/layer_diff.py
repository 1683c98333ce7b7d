"""The difference between two directory trees, as an overlayfs layer.

    diff_trees(lower, upper, out)

`upper` is `lower` after a change (packages installed over it). `out` receives
what a read-only overlayfs layer stacked on `lower` needs so that the stack
shows `upper`:

- an entry that is new, or differs from lower's (type, mode, owner, size,
  content, link target, device number or extended attributes), is copied;
- an entry of lower that upper no longer has becomes a whiteout, a character
  device 0/0 of the same name (overlayfs's convention);
- a directory present in both is recreated (with upper's metadata) only when
  something below it is copied or whited out, or its own metadata changed.

No opaque directories are needed: a directory that replaces a file hides it
whole, and a directory that replaces a directory is compared entry by entry.
Hard links among copied files stay hard links. mtimes alone do not make a file
differ: installing a package rewrites files such as ld.so.cache with the same
bytes, and those need not be in the layer.

Pure over the file system given; nothing here runs a tool.
"""
import os
import shutil
import stat


def _xattrs(path):
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    out = {}
    for name in sorted(names):
        try:
            out[name] = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            pass
    return out


def _same_content(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            ca, cb = fa.read(1 << 20), fb.read(1 << 20)
            if ca != cb:
                return False
            if not ca:
                return True


def same_entry(lower_path, lst, upper_path, ust):
    """Whether upper's entry is lower's (a file of a layer need not repeat it)."""
    if stat.S_IFMT(lst.st_mode) != stat.S_IFMT(ust.st_mode):
        return False
    if (lst.st_mode, lst.st_uid, lst.st_gid) != (ust.st_mode, ust.st_uid, ust.st_gid):
        return False
    if _xattrs(lower_path) != _xattrs(upper_path):
        return False
    if stat.S_ISLNK(ust.st_mode):
        return os.readlink(lower_path) == os.readlink(upper_path)
    if stat.S_ISCHR(ust.st_mode) or stat.S_ISBLK(ust.st_mode):
        return lst.st_rdev == ust.st_rdev
    if stat.S_ISREG(ust.st_mode):
        if lst.st_size != ust.st_size:
            return False
        if lst.st_mtime_ns == ust.st_mtime_ns:
            return True  # a copy of lower not touched since (cp -a keeps mtimes)
        return _same_content(lower_path, upper_path)
    return True  # directories (their entries are compared one by one), fifos, sockets


def _copy_metadata(src, dst, st):
    os.lchown(dst, st.st_uid, st.st_gid)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(dst, stat.S_IMODE(st.st_mode))
    for name, value in _xattrs(src).items():
        try:
            os.setxattr(dst, name, value, follow_symlinks=False)
        except OSError:
            pass
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


class _Copier:
    def __init__(self):
        self.links = {}  # (dev, ino) of upper -> first copy in out

    def copy(self, src, dst, st):
        """Copies one entry of upper (a directory: with everything below it)."""
        if stat.S_ISDIR(st.st_mode):
            os.mkdir(dst)
            for name in sorted(os.listdir(src)):
                s = os.path.join(src, name)
                self.copy(s, os.path.join(dst, name), os.lstat(s))
            _copy_metadata(src, dst, st)
            return
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            first = self.links.get((st.st_dev, st.st_ino))
            if first:
                os.link(first, dst)
                return
            self.links[(st.st_dev, st.st_ino)] = dst
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(src), dst)
        elif stat.S_ISREG(st.st_mode):
            shutil.copyfile(src, dst)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) or stat.S_ISFIFO(st.st_mode):
            os.mknod(dst, st.st_mode, st.st_rdev)
        else:
            return  # sockets have no place in an image
        _copy_metadata(src, dst, st)


def whiteout(path):
    os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))


def diff_trees(lower, upper, out):
    """Writes into `out` (which must not exist) the layer that turns lower into
    upper; returns (entries copied, whiteouts)."""
    if os.path.lexists(out):
        raise FileExistsError(out)
    copier = _Copier()
    counts = [0, 0]

    def diff_dir(rel, ensure_parent, metadata_same):
        """Fills out/rel for a directory both trees have; out/rel (and its
        parents, through ensure_parent) is made only when needed. Returns
        whether it was made."""
        lo, up, dst = (os.path.join(t, rel) for t in (lower, upper, out))
        made = [False]

        def ensure_here():
            if not made[0]:
                ensure_parent()
                os.mkdir(dst)
                made[0] = True

        lower_names, upper_names = set(os.listdir(lo)), set(os.listdir(up))
        for name in sorted(lower_names | upper_names):
            l, u, d = os.path.join(lo, name), os.path.join(up, name), os.path.join(dst, name)
            if name not in upper_names:
                ensure_here()
                whiteout(d)
                counts[1] += 1
                continue
            ust = os.lstat(u)
            if name in lower_names:
                lst = os.lstat(l)
                if stat.S_ISDIR(lst.st_mode) and stat.S_ISDIR(ust.st_mode):
                    diff_dir(os.path.join(rel, name), ensure_here, same_entry(l, lst, u, ust))
                    continue
                if same_entry(l, lst, u, ust):
                    continue
            ensure_here()
            copier.copy(u, d, ust)
            counts[0] += 1
        if not metadata_same:
            ensure_here()
        if made[0]:
            _copy_metadata(up, dst, os.lstat(up))
        return made[0]

    diff_dir("", lambda: None, False)  # out itself is always made
    return tuple(counts)
