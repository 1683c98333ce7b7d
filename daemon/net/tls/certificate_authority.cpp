#include "daemon/net/tls/certificate_authority.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <utility>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

namespace sandboxd::net::tls {

namespace {

namespace fs = std::filesystem;

constexpr const char* kKeyFile = "ca.key";
constexpr const char* kCertificateFile = "ca.crt";
constexpr long kBackdateSeconds = 24 * 60 * 60;
constexpr int kValidityDays = 3652;               // ten years, leap days included
constexpr std::size_t kMaxFileBytes = 64 * 1024;  // a PEM key or certificate is ~1 KiB

struct KeyAndCertificate {
  UniqueEvpPkey key;
  UniqueX509 certificate;
};

std::string errno_text(const std::string& what, int error) { return what + ": " + std::strerror(error); }

// Closes a file descriptor on every path out of a function.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  // Closes now, reporting the error close() may return after a write.
  int close() {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

Expected<std::string, std::string> random_hex(std::size_t bytes) {
  std::array<unsigned char, 32> raw{};
  if (bytes > raw.size() || RAND_bytes(raw.data(), static_cast<int>(bytes)) != 1) {
    return Unexpected{openssl_error("drawing random bytes")};
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < bytes; ++i) {
    out.push_back(kHex[raw[i] >> 4]);
    out.push_back(kHex[raw[i] & 0x0f]);
  }
  return out;
}

Expected<KeyAndCertificate, std::string> make_ca() {
  UniqueEvpPkey key = generate_p256_key();
  if (!key) return Unexpected{openssl_error("generating the CA key")};
  auto id = random_hex(4);
  if (!id) return Unexpected{id.error()};
  const std::string common_name = "sandboxd interception CA " + *id;

  UniqueX509 cert(X509_new());
  UniqueAsn1Integer serial = random_serial(128);
  if (!cert || !serial) return Unexpected{openssl_error("allocating the CA certificate")};
  X509_NAME* name = X509_get_subject_name(cert.get());
  const bool ok =
      X509_set_version(cert.get(), X509_VERSION_3) == 1 && X509_set_serialNumber(cert.get(), serial.get()) == 1 &&
      X509_gmtime_adj(X509_getm_notBefore(cert.get()), -kBackdateSeconds) != nullptr &&
      X509_time_adj_ex(X509_getm_notAfter(cert.get()), kValidityDays, 0, nullptr) != nullptr &&
      X509_set_pubkey(cert.get(), key.get()) == 1 &&
      X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>("sandboxd"), -1, -1,
                                 0) == 1 &&
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(common_name.c_str()),
                                 -1, -1, 0) == 1 &&
      X509_set_issuer_name(cert.get(), name) == 1 &&
      add_extension(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE,pathlen:0") &&
      add_extension(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign") &&
      add_extension(cert.get(), cert.get(), NID_subject_key_identifier, "hash") &&
      add_extension(cert.get(), cert.get(), NID_authority_key_identifier, "keyid:always") &&
      X509_sign(cert.get(), key.get(), EVP_sha256()) > 0;
  if (!ok) return Unexpected{openssl_error("building the CA certificate")};
  return KeyAndCertificate{std::move(key), std::move(cert)};
}

Expected<std::string, std::string> key_pem(EVP_PKEY* key) {
  UniqueBio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return Unexpected{openssl_error("encoding the CA key")};
  }
  return bio_contents(bio.get());
}

std::string certificate_pem_of(X509* cert) {
  UniqueBio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) return {};
  return bio_contents(bio.get());
}

Expected<void, std::string> sync_directory(const fs::path& dir) {
  FileDescriptor fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0 || ::fsync(fd.get()) != 0) return Unexpected{errno_text("syncing " + dir.string(), errno)};
  return {};
}

// Writes `contents` to dir/name through a temporary file created with
// O_EXCL and `mode` (so it is never, even briefly, more readable than that),
// synced before it is renamed into place.
Expected<void, std::string> write_file_atomically(const fs::path& dir, const char* name, const std::string& contents,
                                                  mode_t mode) {
  auto suffix = random_hex(8);
  if (!suffix) return Unexpected{suffix.error()};
  const fs::path target = dir / name;
  const fs::path temporary = dir / (std::string(".") + name + ".tmp-" + *suffix);
  FileDescriptor fd(::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode));
  if (fd.get() < 0) return Unexpected{errno_text("creating " + temporary.string(), errno)};
  auto fail = [&](const std::string& what) {
    const int error = errno;
    ::unlink(temporary.c_str());
    return Unexpected{errno_text(what, error)};
  };
  // The umask may have taken bits away from a mode it should not (the
  // certificate is public); it can never have added any.
  if (::fchmod(fd.get(), mode) != 0) return fail("setting the mode of " + temporary.string());
  std::size_t written = 0;
  while (written < contents.size()) {
    const ssize_t n = ::write(fd.get(), contents.data() + written, contents.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("writing " + temporary.string());
    written += static_cast<std::size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return fail("syncing " + temporary.string());
  if (fd.close() != 0) return fail("closing " + temporary.string());
  if (::rename(temporary.c_str(), target.c_str()) != 0) return fail("renaming into " + target.string());
  return {};
}

Expected<void, std::string> ensure_directory(const fs::path& dir) {
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return {};
  if (dir.has_parent_path()) fs::create_directories(dir.parent_path(), ec);
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Unexpected{errno_text("creating " + dir.string(), errno)};
  }
  return {};
}

// Temporary files a crash left behind (one may hold a key).
void remove_stale_temporaries(const fs::path& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(std::string(".") + kKeyFile + ".tmp-", 0) == 0 ||
        name.rfind(std::string(".") + kCertificateFile + ".tmp-", 0) == 0) {
      fs::remove(entry.path(), ec);
    }
  }
}

Expected<void, std::string> store(const fs::path& dir, const KeyAndCertificate& ca) {
  if (auto ok = ensure_directory(dir); !ok) return ok;
  remove_stale_temporaries(dir);
  auto key_text = key_pem(ca.key.get());
  if (!key_text) return Unexpected{key_text.error()};
  const std::string cert_text = certificate_pem_of(ca.certificate.get());
  if (cert_text.empty()) return Unexpected{openssl_error("encoding the CA certificate")};
  if (auto ok = write_file_atomically(dir, kKeyFile, *key_text, 0600); !ok) return ok;
  if (auto ok = write_file_atomically(dir, kCertificateFile, cert_text, 0644); !ok) return ok;
  return sync_directory(dir);
}

// The contents of `path`; for the key, only if no one else could have read it.
Expected<std::string, std::string> read_file(const fs::path& path, bool secret) {
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0) return Unexpected{errno_text("opening " + path.string(), errno)};
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Unexpected{errno_text("reading " + path.string(), errno)};
  if (!S_ISREG(st.st_mode)) return Unexpected{path.string() + " is not a regular file"};
  if (secret && st.st_uid != ::geteuid()) {
    return Unexpected{path.string() + " is not owned by the current user; refusing to use it"};
  }
  if (secret && (st.st_mode & 077) != 0) {
    return Unexpected{path.string() + " is readable or writable by group or others (it must be mode 0600); " +
                      "refusing to use it: fix its mode, or rotate the CA if it may have leaked"};
  }
  if (static_cast<std::size_t>(st.st_size) > kMaxFileBytes) return Unexpected{path.string() + " is too large"};
  std::string out(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t got = 0;
  while (got < out.size()) {
    const ssize_t n = ::read(fd.get(), out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Unexpected{errno_text("reading " + path.string(), errno)};
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  out.resize(got);
  return out;
}

Expected<KeyAndCertificate, std::string> load(const fs::path& dir) {
  const fs::path key_path = dir / kKeyFile;
  const fs::path cert_path = dir / kCertificateFile;
  auto key_text = read_file(key_path, true);
  if (!key_text) return Unexpected{key_text.error()};
  auto cert_text = read_file(cert_path, false);
  if (!cert_text) return Unexpected{cert_text.error()};

  UniqueBio key_bio(BIO_new_mem_buf(key_text->data(), static_cast<int>(key_text->size())));
  UniqueEvpPkey key(key_bio ? PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!key) return Unexpected{openssl_error(("reading the key in " + key_path.string()).c_str())};
  UniqueBio cert_bio(BIO_new_mem_buf(cert_text->data(), static_cast<int>(cert_text->size())));
  UniqueX509 cert(cert_bio ? PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!cert) return Unexpected{openssl_error(("reading the certificate in " + cert_path.string()).c_str())};

  const std::string files = key_path.string() + " and " + cert_path.string();
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return Unexpected{"the key does not match the certificate in " + files + "; rotate the CA"};
  }
  if ((X509_get_extension_flags(cert.get()) & EXFLAG_CA) == 0 ||
      (X509_get_key_usage(cert.get()) & KU_KEY_CERT_SIGN) == 0) {
    return Unexpected{cert_path.string() + " is not a CA certificate (basicConstraints CA:TRUE, keyCertSign)"};
  }
  if (X509_self_signed(cert.get(), 1) != 1) {
    ERR_clear_error();
    return Unexpected{cert_path.string() + " is not self-signed"};
  }
  if (X509_cmp_current_time(X509_get0_notAfter(cert.get())) <= 0) {
    return Unexpected{cert_path.string() + " has expired; rotate the CA"};
  }
  return KeyAndCertificate{std::move(key), std::move(cert)};
}

bool path_exists(const fs::path& path) {
  std::error_code ec;
  return fs::symlink_status(path, ec).type() != fs::file_type::not_found && !ec;
}

}  // namespace

CertificateAuthority::CertificateAuthority(UniqueEvpPkey key, UniqueX509 certificate)
    : key_(std::move(key)), certificate_(std::move(certificate)) {
  certificate_pem_ = certificate_pem_of(certificate_.get());
  fingerprint_ = sha256_fingerprint(certificate_.get());
  std::array<char, 256> cn{};
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(certificate_.get()), NID_commonName, cn.data(),
                                static_cast<int>(cn.size())) > 0) {
    common_name_ = cn.data();
  }
}

Expected<CertificateAuthority, std::string> CertificateAuthority::load_or_create(const std::filesystem::path& dir) {
  const bool have_key = path_exists(dir / kKeyFile);
  const bool have_cert = path_exists(dir / kCertificateFile);
  if (!have_key && !have_cert) return rotate(dir);
  if (have_key != have_cert) {
    return Unexpected{(dir / (have_key ? kCertificateFile : kKeyFile)).string() + " is missing but " +
                      (dir / (have_key ? kKeyFile : kCertificateFile)).string() + " exists; rotate the CA"};
  }
  auto loaded = load(dir);
  if (!loaded) return Unexpected{loaded.error()};
  return CertificateAuthority(std::move(loaded->key), std::move(loaded->certificate));
}

Expected<CertificateAuthority, std::string> CertificateAuthority::rotate(const std::filesystem::path& dir) {
  auto made = make_ca();
  if (!made) return Unexpected{made.error()};
  if (auto ok = store(dir, *made); !ok) return Unexpected{ok.error()};
  return CertificateAuthority(std::move(made->key), std::move(made->certificate));
}

Expected<CertificateAuthority, std::string> CertificateAuthority::create_ephemeral() {
  auto made = make_ca();
  if (!made) return Unexpected{made.error()};
  return CertificateAuthority(std::move(made->key), std::move(made->certificate));
}

}  // namespace sandboxd::net::tls
