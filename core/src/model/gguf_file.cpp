#include "model/gguf_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <system_error>

#include "model/ggml_type.hpp"

namespace apr {

static_assert(std::endian::native == std::endian::little, "the GGUF reader assumes a little-endian host");

GgufError::GgufError(const std::string& path, uint64_t offset, const std::string& field, const std::string& problem)
    : std::runtime_error(path + ": " + field + " at offset " + std::to_string(offset) + ": " + problem),
      offset_(offset),
      field_(field) {}

uint64_t GgufTensorInfo::n_elements() const {
    uint64_t n = 1;
    for (uint64_t d : ne) n *= d;  // validated at open: never overflows
    return n;
}

namespace {

constexpr uint32_t kMaxDims = 4;
constexpr uint64_t kDefaultAlignment = 32;
// Alignments beyond this are not a layout any writer produces; refusing them keeps align_up
// far from overflow.
constexpr uint64_t kMaxAlignment = uint64_t(1) << 30;
// The smallest possible encodings, used to reject counts that cannot fit in the bytes left
// before anything is allocated for them.
constexpr uint64_t kMinKvBytes = 8 + 1 + 4 + 1;          // key length, 1-byte key, type, 1-byte value
constexpr uint64_t kMinTensorInfoBytes = 8 + 1 + 4 + 8 + 4 + 8;  // name length, 1-byte name, n_dims, ne[0], type, offset


// Encoded size of a scalar of type t; 0 for STRING and ARRAY (variable).
uint64_t scalar_size(GgufType t) {
    switch (t) {
        case GgufType::UINT8: case GgufType::INT8: case GgufType::BOOL: return 1;
        case GgufType::UINT16: case GgufType::INT16: return 2;
        case GgufType::UINT32: case GgufType::INT32: case GgufType::FLOAT32: return 4;
        case GgufType::UINT64: case GgufType::INT64: case GgufType::FLOAT64: return 8;
        case GgufType::STRING: case GgufType::ARRAY: return 0;
    }
    return 0;
}

bool is_integer(GgufType t) {
    switch (t) {
        case GgufType::UINT8: case GgufType::INT8: case GgufType::UINT16: case GgufType::INT16:
        case GgufType::UINT32: case GgufType::INT32: case GgufType::UINT64: case GgufType::INT64: return true;
        default: return false;
    }
}

bool is_float(GgufType t) { return t == GgufType::FLOAT32 || t == GgufType::FLOAT64; }

// A bounds-checked cursor over the file's bytes. Every read checks the bytes left first, so
// nothing is ever read past the end; every failure names the field being read.
class Cursor {
public:
    Cursor(const std::string& path, const uint8_t* base, uint64_t size) : path_(path), base_(base), size_(size) {}

    uint64_t pos() const { return pos_; }
    uint64_t left() const { return size_ - pos_; }

    [[noreturn]] void fail_at(uint64_t offset, const std::string& field, const std::string& problem) const {
        throw GgufError(path_, offset, field, problem);
    }

    void need(uint64_t n, const std::string& field) const {
        if (n > left())
            fail_at(pos_, field,
                    "truncated: needs " + std::to_string(n) + " bytes, the file has " + std::to_string(left()) + " left");
    }

    template <typename T>
    T read(const std::string& field) {
        need(sizeof(T), field);
        T v;
        std::memcpy(&v, base_ + pos_, sizeof(T));
        pos_ += sizeof(T);
        return v;
    }

    std::string read_string(const std::string& field) {
        const uint64_t at = pos_;
        const uint64_t len = read<uint64_t>(field + " (length)");
        if (len > left())
            fail_at(at, field,
                    "string length " + std::to_string(len) + " runs past the end of the file (" + std::to_string(left()) +
                        " bytes left)");
        std::string s(reinterpret_cast<const char*>(base_ + pos_), len);
        pos_ += len;
        return s;
    }

private:
    const std::string& path_;
    const uint8_t* base_;
    uint64_t size_;
    uint64_t pos_ = 0;
};

GgufType read_value_type(Cursor& c, const std::string& field) {
    const uint64_t at = c.pos();
    const uint32_t t = c.read<uint32_t>(field);
    if (t > uint32_t(GgufType::FLOAT64)) c.fail_at(at, field, "unknown metadata value type " + std::to_string(t));
    return GgufType(t);
}

// Reads one scalar of type t (not STRING/ARRAY) widened to int64/uint64/double/bool.
int64_t read_int_scalar(Cursor& c, GgufType t, const std::string& field, bool& is_unsigned, uint64_t& as_unsigned) {
    is_unsigned = false;
    switch (t) {
        case GgufType::UINT8: is_unsigned = true; as_unsigned = c.read<uint8_t>(field); break;
        case GgufType::UINT16: is_unsigned = true; as_unsigned = c.read<uint16_t>(field); break;
        case GgufType::UINT32: is_unsigned = true; as_unsigned = c.read<uint32_t>(field); break;
        case GgufType::UINT64: is_unsigned = true; as_unsigned = c.read<uint64_t>(field); break;
        case GgufType::INT8: return c.read<int8_t>(field);
        case GgufType::INT16: return c.read<int16_t>(field);
        case GgufType::INT32: return c.read<int32_t>(field);
        case GgufType::INT64: return c.read<int64_t>(field);
        default: break;
    }
    return int64_t(as_unsigned);
}

bool read_bool(Cursor& c, const std::string& field) {
    const uint64_t at = c.pos();
    const uint8_t b = c.read<uint8_t>(field);
    if (b > 1) c.fail_at(at, field, "bool value " + std::to_string(b) + " is neither 0 nor 1");
    return b == 1;
}

double read_float(Cursor& c, GgufType t, const std::string& field) {
    if (t == GgufType::FLOAT32) return c.read<float>(field);
    return c.read<double>(field);
}

void read_array(Cursor& c, GgufValue& v, const std::string& field) {
    const GgufType et = read_value_type(c, field + " (array element type)");
    if (et == GgufType::ARRAY) c.fail_at(c.pos() - 4, field, "arrays of arrays are not supported");
    const uint64_t count_at = c.pos();
    const uint64_t count = c.read<uint64_t>(field + " (array length)");
    const uint64_t min_elem = et == GgufType::STRING ? 8 : scalar_size(et);
    if (count > c.left() / min_elem)
        c.fail_at(count_at, field,
                  "array of " + std::to_string(count) + " " + gguf_type_name(et) + " elements cannot fit in the " +
                      std::to_string(c.left()) + " bytes left");
    v.array_type = et;
    v.array_length = count;
    if (et == GgufType::STRING) {
        v.strings.reserve(count);
        for (uint64_t i = 0; i < count; ++i) v.strings.push_back(c.read_string(field + "[" + std::to_string(i) + "]"));
    } else if (is_float(et)) {
        v.floats.reserve(count);
        for (uint64_t i = 0; i < count; ++i) v.floats.push_back(read_float(c, et, field));
    } else if (et == GgufType::BOOL) {
        v.ints.reserve(count);
        for (uint64_t i = 0; i < count; ++i) v.ints.push_back(read_bool(c, field + "[" + std::to_string(i) + "]"));
    } else {
        v.ints.reserve(count);
        bool is_unsigned;
        uint64_t u = 0;
        for (uint64_t i = 0; i < count; ++i) v.ints.push_back(read_int_scalar(c, et, field, is_unsigned, u));
    }
}

void read_value(Cursor& c, GgufValue& v, const std::string& field) {
    switch (v.type) {
        case GgufType::STRING: v.scalar = c.read_string(field); break;
        case GgufType::ARRAY: read_array(c, v, field); break;
        case GgufType::BOOL: v.scalar = read_bool(c, field); break;
        case GgufType::FLOAT32: case GgufType::FLOAT64: v.scalar = read_float(c, v.type, field); break;
        default: {
            bool is_unsigned;
            uint64_t u = 0;
            const int64_t s = read_int_scalar(c, v.type, field, is_unsigned, u);
            if (is_unsigned) v.scalar = u; else v.scalar = s;
        }
    }
}

std::string kv_field(uint64_t index, const std::string& what, const std::string& key) {
    return "kv[" + std::to_string(index) + "]." + what + " (key '" + key + "')";
}

std::string tensor_field(uint64_t index, const std::string& what) {
    return "tensor_infos[" + std::to_string(index) + "]." + what;
}

}  // namespace

std::unique_ptr<GgufFile> GgufFile::open(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "cannot open " + path);
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const int e = errno;
        ::close(fd);
        throw std::system_error(e, std::generic_category(), "cannot stat " + path);
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        throw std::system_error(EINVAL, std::generic_category(), path + " is not a regular file");
    }
    std::unique_ptr<GgufFile> f(new GgufFile());
    f->path_ = path;
    f->size_ = uint64_t(st.st_size);
    if (f->size_ > 0) {
        void* m = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            const int e = errno;
            ::close(fd);
            throw std::system_error(e, std::generic_category(), "cannot map " + path);
        }
        f->mapping_ = m;
        f->base_ = static_cast<const uint8_t*>(m);
    }
    ::close(fd);  // the mapping stays valid without the descriptor
    f->parse();
    return f;
}

std::unique_ptr<GgufFile> GgufFile::from_memory(std::span<const uint8_t> bytes, const std::string& name) {
    std::unique_ptr<GgufFile> f(new GgufFile());
    f->path_ = name;
    f->base_ = bytes.data();
    f->size_ = bytes.size();
    f->parse();
    return f;
}

GgufFile::~GgufFile() {
    if (mapping_) ::munmap(mapping_, size_);
}

void GgufFile::parse() {
    Cursor c(path_, base_, size_);

    // ---- header --------------------------------------------------------------------------
    if (size_ < 4) c.fail_at(0, "header.magic", "file of " + std::to_string(size_) + " bytes is too short for a GGUF header");
    if (std::memcmp(base_, "GGUF", 4) != 0) {
        char hex[16];
        std::snprintf(hex, sizeof hex, "%02x%02x%02x%02x", base_[0], base_[1], base_[2], base_[3]);
        c.fail_at(0, "header.magic", std::string("bad magic 0x") + hex + " (expected \"GGUF\"): not a GGUF file");
    }
    c.read<uint32_t>("header.magic");
    version_ = c.read<uint32_t>("header.version");
    if (version_ == 1) c.fail_at(4, "header.version", "GGUF version 1 is not supported (only versions 2 and 3)");
    if (version_ == 0x02000000u || version_ == 0x03000000u)
        c.fail_at(4, "header.version", "big-endian GGUF files are not supported");
    if (version_ != 2 && version_ != 3)
        c.fail_at(4, "header.version", "unsupported GGUF version " + std::to_string(version_) + " (only versions 2 and 3)");
    const uint64_t n_tensors = c.read<uint64_t>("header.n_tensors");
    const uint64_t n_kv = c.read<uint64_t>("header.n_kv");
    if (n_kv > c.left() / kMinKvBytes)
        c.fail_at(16, "header.n_kv",
                  std::to_string(n_kv) + " key/value pairs cannot fit in the " + std::to_string(c.left()) + " bytes left");
    if (n_tensors > (c.left() - n_kv * kMinKvBytes) / kMinTensorInfoBytes)
        c.fail_at(8, "header.n_tensors",
                  std::to_string(n_tensors) + " tensor infos cannot fit in the " + std::to_string(c.left()) + " bytes left");

    // ---- metadata ------------------------------------------------------------------------
    for (uint64_t i = 0; i < n_kv; ++i) {
        const uint64_t key_at = c.pos();
        const std::string idx = "kv[" + std::to_string(i) + "]";
        std::string key = c.read_string(idx + ".key");
        if (key.empty()) c.fail_at(key_at, idx + ".key", "empty key");
        if (auto it = metadata_.find(key); it != metadata_.end())
            c.fail_at(key_at, kv_field(i, "key", key),
                      "duplicate key (first defined by kv[" + std::to_string(it->second.index) + "])");
        GgufValue v;
        v.index = i;
        v.type = read_value_type(c, kv_field(i, "type", key));
        v.offset = c.pos();
        read_value(c, v, kv_field(i, "value", key));
        metadata_.emplace(std::move(key), std::move(v));
    }

    if (auto it = metadata_.find("general.alignment"); it != metadata_.end()) {
        const GgufValue& v = it->second;
        const std::string field = kv_field(v.index, "value", it->first);
        if (!is_integer(v.type)) c.fail_at(v.offset, field, std::string("must be an integer, not ") + gguf_type_name(v.type));
        const uint64_t* u = std::get_if<uint64_t>(&v.scalar);
        const int64_t* s = std::get_if<int64_t>(&v.scalar);
        const uint64_t a = u ? *u : (*s < 0 ? 0 : uint64_t(*s));
        if (a == 0 || !std::has_single_bit(a) || a > kMaxAlignment)
            c.fail_at(v.offset, field,
                      "alignment " + (u ? std::to_string(*u) : std::to_string(*s)) + " is not a power of two up to 2^30");
        alignment_ = a;
    } else {
        alignment_ = kDefaultAlignment;
    }

    // ---- tensor infos --------------------------------------------------------------------
    if (n_tensors > c.left() / kMinTensorInfoBytes)
        c.fail_at(8, "header.n_tensors",
                  std::to_string(n_tensors) + " tensor infos cannot fit in the " + std::to_string(c.left()) +
                      " bytes left after the metadata");
    tensors_.reserve(n_tensors);
    std::vector<uint64_t> offset_field_at;
    offset_field_at.reserve(n_tensors);
    for (uint64_t i = 0; i < n_tensors; ++i) {
        GgufTensorInfo t;
        t.info_offset = c.pos();
        t.name = c.read_string(tensor_field(i, "name"));
        if (t.name.empty()) c.fail_at(t.info_offset, tensor_field(i, "name"), "empty tensor name");
        if (auto it = tensor_index_.find(t.name); it != tensor_index_.end())
            c.fail_at(t.info_offset, tensor_field(i, "name"),
                      "duplicate tensor name '" + t.name + "' (first at tensor_infos[" + std::to_string(it->second) + "])");
        const std::string named = " (tensor '" + t.name + "')";

        const uint64_t dims_at = c.pos();
        const uint32_t n_dims = c.read<uint32_t>(tensor_field(i, "n_dims"));
        if (n_dims < 1 || n_dims > kMaxDims)
            c.fail_at(dims_at, tensor_field(i, "n_dims"), "n_dims " + std::to_string(n_dims) + " is not in 1..4" + named);
        uint64_t n_elements = 1;
        for (uint32_t d = 0; d < n_dims; ++d) {
            const std::string field = tensor_field(i, "ne[" + std::to_string(d) + "]");
            const uint64_t at = c.pos();
            const uint64_t ne = c.read<uint64_t>(field);
            if (ne == 0) c.fail_at(at, field, "dimension is 0" + named);
            if (ne > uint64_t(std::numeric_limits<int64_t>::max()) / n_elements)
                c.fail_at(at, field, "element count overflows 2^63" + named);
            n_elements *= ne;
            t.ne.push_back(ne);
        }

        const uint64_t type_at = c.pos();
        t.type = c.read<uint32_t>(tensor_field(i, "type"));
        const auto traits = ggml_type_traits(t.type);
        if (!traits) c.fail_at(type_at, tensor_field(i, "type"), ggml_type_name(t.type) + " is not supported" + named);
        if (t.ne[0] % traits->block_size != 0)
            c.fail_at(dims_at + 4, tensor_field(i, "ne[0]"),
                      "row length " + std::to_string(t.ne[0]) + " is not a multiple of " + traits->name + "'s block size " +
                          std::to_string(traits->block_size) + named);
        const uint64_t n_blocks = n_elements / traits->block_size;
        if (n_blocks > std::numeric_limits<uint64_t>::max() / traits->type_size)
            c.fail_at(dims_at + 4, tensor_field(i, "ne"), "byte size overflows 2^64" + named);
        t.n_bytes = n_blocks * traits->type_size;

        offset_field_at.push_back(c.pos());
        t.offset = c.read<uint64_t>(tensor_field(i, "offset"));
        tensor_index_.emplace(t.name, tensors_.size());
        tensors_.push_back(std::move(t));
    }

    // ---- data section --------------------------------------------------------------------
    const uint64_t header_end = c.pos();
    data_offset_ = (header_end + alignment_ - 1) / alignment_ * alignment_;  // header_end < 2^64 - 2^30: no overflow
    if (tensors_.empty()) return;  // vocab-only files may end without padding
    if (data_offset_ > size_)
        c.fail_at(header_end, "data section",
                  "starts at offset " + std::to_string(data_offset_) + ", past the end of the file (" +
                      std::to_string(size_) + " bytes)");
    const uint64_t data_size = size_ - data_offset_;
    for (size_t i = 0; i < tensors_.size(); ++i) {
        GgufTensorInfo& t = tensors_[i];
        const std::string field = tensor_field(i, "offset");
        const std::string named = " (tensor '" + t.name + "')";
        if (t.offset % alignment_ != 0)
            c.fail_at(offset_field_at[i], field,
                      "offset " + std::to_string(t.offset) + " is not a multiple of the alignment " +
                          std::to_string(alignment_) + named);
        if (t.offset > data_size || t.n_bytes > data_size - t.offset)
            c.fail_at(offset_field_at[i], field,
                      std::to_string(t.n_bytes) + " bytes at data offset " + std::to_string(t.offset) +
                          " run past the end of the file (the data section holds " + std::to_string(data_size) +
                          " bytes)" + named);
        t.data = base_ + data_offset_ + t.offset;
    }
}

// ---- metadata access ---------------------------------------------------------------------

bool GgufFile::has(std::string_view key) const { return metadata_.find(key) != metadata_.end(); }

const GgufValue* GgufFile::find(std::string_view key) const {
    auto it = metadata_.find(key);
    return it == metadata_.end() ? nullptr : &it->second;
}

void GgufFile::throw_wrong_type(std::string_view key, const GgufValue& v, const char* wanted) const {
    std::string has = gguf_type_name(v.type);
    if (v.type == GgufType::ARRAY) has = std::string("array of ") + gguf_type_name(v.array_type);
    throw GgufError(path_, v.offset, kv_field(v.index, "value", std::string(key)),
                    "expected " + std::string(wanted) + ", found " + has);
}

std::optional<std::string> GgufFile::get_string(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) return std::nullopt;
    if (v->type != GgufType::STRING) throw_wrong_type(key, *v, "a string");
    return std::get<std::string>(v->scalar);
}

std::optional<uint64_t> GgufFile::get_uint(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) return std::nullopt;
    if (!is_integer(v->type)) throw_wrong_type(key, *v, "an unsigned integer");
    if (const uint64_t* u = std::get_if<uint64_t>(&v->scalar)) return *u;
    const int64_t s = std::get<int64_t>(v->scalar);
    if (s < 0)
        throw GgufError(path_, v->offset, kv_field(v->index, "value", std::string(key)),
                        "expected a non-negative integer, found " + std::to_string(s));
    return uint64_t(s);
}

std::optional<int64_t> GgufFile::get_int(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) return std::nullopt;
    if (!is_integer(v->type)) throw_wrong_type(key, *v, "an integer");
    if (const int64_t* s = std::get_if<int64_t>(&v->scalar)) return *s;
    const uint64_t u = std::get<uint64_t>(v->scalar);
    if (u > uint64_t(std::numeric_limits<int64_t>::max()))
        throw GgufError(path_, v->offset, kv_field(v->index, "value", std::string(key)),
                        "integer " + std::to_string(u) + " does not fit in int64");
    return int64_t(u);
}

std::optional<double> GgufFile::get_float(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) return std::nullopt;
    if (const double* d = std::get_if<double>(&v->scalar)) return *d;
    if (const int64_t* s = std::get_if<int64_t>(&v->scalar); s && is_integer(v->type)) return double(*s);
    if (const uint64_t* u = std::get_if<uint64_t>(&v->scalar); u && is_integer(v->type)) return double(*u);
    throw_wrong_type(key, *v, "a number");
}

std::optional<bool> GgufFile::get_bool(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) return std::nullopt;
    if (v->type != GgufType::BOOL) throw_wrong_type(key, *v, "a bool");
    return std::get<bool>(v->scalar);
}

const std::vector<std::string>* GgufFile::get_string_array(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) return nullptr;
    if (v->type != GgufType::ARRAY || v->array_type != GgufType::STRING) throw_wrong_type(key, *v, "an array of strings");
    return &v->strings;
}

const std::vector<double>* GgufFile::get_float_array(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) return nullptr;
    if (v->type != GgufType::ARRAY || !is_float(v->array_type)) throw_wrong_type(key, *v, "an array of floats");
    return &v->floats;
}

const std::vector<int64_t>* GgufFile::get_int_array(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) return nullptr;
    if (v->type != GgufType::ARRAY || !(is_integer(v->array_type) || v->array_type == GgufType::BOOL))
        throw_wrong_type(key, *v, "an array of integers");
    return &v->ints;
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
    auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

std::string gguf_type_name(GgufType t) {
    switch (t) {
        case GgufType::UINT8: return "uint8";
        case GgufType::INT8: return "int8";
        case GgufType::UINT16: return "uint16";
        case GgufType::INT16: return "int16";
        case GgufType::UINT32: return "uint32";
        case GgufType::INT32: return "int32";
        case GgufType::FLOAT32: return "float32";
        case GgufType::BOOL: return "bool";
        case GgufType::STRING: return "string";
        case GgufType::ARRAY: return "array";
        case GgufType::UINT64: return "uint64";
        case GgufType::INT64: return "int64";
        case GgufType::FLOAT64: return "float64";
    }
    return "type " + std::to_string(static_cast<uint32_t>(t));
}

}  // namespace apr
