#include "io/safetensors_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>

#include "common/error.h"

namespace rwkv {

// ---- AtomicFileWriter

namespace {
constexpr size_t kWriteBuffer = size_t(4) << 20;
constexpr size_t kMaxWriteCall = size_t(1) << 30;  // Linux writes at most ~2 GiB per call

// The process umask, read without changing it (umask(2) can only be read by setting it, which would race with
// other threads creating files): the "Umask:" line of /proc/self/status, or the usual 022.
mode_t current_umask() {
    if (FILE* f = std::fopen("/proc/self/status", "r")) {
        char line[256];
        unsigned mask = 022;
        while (std::fgets(line, sizeof line, f))
            if (std::sscanf(line, "Umask: %o", &mask) == 1) break;
        std::fclose(f);
        return mode_t(mask);
    }
    return 022;
}
}  // namespace

AtomicFileWriter::AtomicFileWriter(const std::string& path) : path_(path), tmp_(path + ".tmp-XXXXXX") {
    fd_ = mkstemp(tmp_.data());
    if (fd_ < 0) {
        std::string dir = ".";
        if (size_t slash = path.rfind('/'); slash != std::string::npos) dir = slash == 0 ? "/" : path.substr(0, slash);
        throw_io(path + ": cannot create a temporary file in " + dir + ": " + std::strerror(errno));
    }
    // mkstemp creates the file 0600; give it the mode a plain open(O_CREAT, 0666) would.
    ::fchmod(fd_, 0666 & ~current_umask());
    buf_.reserve(kWriteBuffer);
}

AtomicFileWriter::~AtomicFileWriter() {
    if (fd_ >= 0) {
        ::close(fd_);
        ::unlink(tmp_.c_str());
    }
}

void AtomicFileWriter::fail(const std::string& what) {
    const int err = errno;
    if (fd_ >= 0) {
        ::close(fd_);
        ::unlink(tmp_.c_str());
        fd_ = -1;
    }
    throw_io(path_ + ": " + what + ": " + std::strerror(err));
}

void AtomicFileWriter::write_fd(const void* data, size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
        ssize_t w = ::write(fd_, p, std::min(n, kMaxWriteCall));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (w == 0) errno = EIO;
            fail("write failed");
        }
        p += w;
        n -= size_t(w);
    }
}

void AtomicFileWriter::flush() {
    if (!buf_.empty()) write_fd(buf_.data(), buf_.size());
    buf_.clear();
}

void AtomicFileWriter::write(const void* data, size_t n) {
    if (fd_ < 0) throw_io(path_ + ": write after the file was closed");
    offset_ += n;
    if (buf_.size() + n <= kWriteBuffer) {
        const uint8_t* p = static_cast<const uint8_t*>(data);
        buf_.insert(buf_.end(), p, p + n);
        return;
    }
    flush();
    if (n < kWriteBuffer) {
        const uint8_t* p = static_cast<const uint8_t*>(data);
        buf_.insert(buf_.end(), p, p + n);
    } else {
        write_fd(data, n);
    }
}

void AtomicFileWriter::write_zeros(size_t n) {
    static const uint8_t zeros[4096] = {};
    while (n > 0) {
        size_t k = std::min(n, sizeof zeros);
        write(zeros, k);
        n -= k;
    }
}

void AtomicFileWriter::commit() {
    if (fd_ < 0) throw_io(path_ + ": commit after the file was closed");
    flush();
    if (::fsync(fd_) != 0) fail("flushing to disk failed");
    if (::close(fd_) != 0) {
        fd_ = -1;
        const int err = errno;
        ::unlink(tmp_.c_str());
        throw_io(path_ + ": closing failed: " + std::strerror(err));
    }
    fd_ = -1;
    if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
        const int err = errno;
        ::unlink(tmp_.c_str());
        throw_io(path_ + ": cannot replace the file: " + std::strerror(err));
    }
    std::string dir = ".";
    if (size_t slash = path_.rfind('/'); slash != std::string::npos) dir = slash == 0 ? "/" : path_.substr(0, slash);
    if (int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY); dfd >= 0) {  // make the rename itself durable
        ::fsync(dfd);
        ::close(dfd);
    }
}

// ---- safetensors

namespace {

const char* safetensors_dtype(DType t) {
    switch (t) {
        case DType::F32:
            return "F32";
        case DType::F16:
            return "F16";
        case DType::BF16:
            return "BF16";
    }
    return "?";
}

}  // namespace

void write_safetensors(const std::string& path, const std::vector<const TensorView*>& tensors) {
    std::set<std::string> names;
    for (const TensorView* t : tensors) {
        if (!t) throw_invalid(path + ": null tensor in the list to write");
        if (t->name.empty()) throw_invalid(path + ": a tensor has an empty name");
        if (t->name == "__metadata__") throw_invalid(path + ": '__metadata__' cannot be a tensor name in safetensors");
        if (!names.insert(t->name).second) throw_invalid(path + ": tensor '" + t->name + "' appears twice");
        if (!t->data && t->nbytes() > 0) throw_invalid(path + ": tensor '" + t->name + "' has no data");
    }

    // Data order: the given order, tensors of a size that is not a multiple of 8 last (no gaps are allowed).
    std::vector<const TensorView*> order;
    for (const TensorView* t : tensors)
        if (t->nbytes() % 8 == 0) order.push_back(t);
    for (const TensorView* t : tensors)
        if (t->nbytes() % 8 != 0) order.push_back(t);

    nlohmann::ordered_json header;
    header["__metadata__"] = {{"format", "pt"}};
    std::unordered_map<const TensorView*, uint64_t> begin;
    uint64_t offset = 0;
    for (const TensorView* t : order) {
        begin[t] = offset;
        offset += t->nbytes();
    }
    for (const TensorView* t : tensors) {  // header in the given order
        header[t->name] = {{"dtype", safetensors_dtype(t->dtype)},
                           {"shape", t->shape},
                           {"data_offsets", {begin[t], begin[t] + t->nbytes()}}};
    }
    std::string text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' ');

    AtomicFileWriter out(path);
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = uint8_t(uint64_t(text.size()) >> (8 * i));
    out.write(len, 8);
    out.write(text.data(), text.size());
    for (const TensorView* t : order) out.write(t->data, t->nbytes());
    out.commit();
}

}  // namespace rwkv
