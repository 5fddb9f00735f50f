#include "model/gguf_writer.hpp"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <mutex>
#include <exception>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "model/ggml_type.hpp"
#include "model/tensor_codec.hpp"

namespace apr {

static_assert(std::endian::native == std::endian::little, "the GGUF writer assumes a little-endian host");

namespace {

template <typename T>
void append(std::vector<uint8_t>& out, T v) {
    const size_t at = out.size();
    out.resize(at + sizeof(T));
    std::memcpy(out.data() + at, &v, sizeof(T));
}

void append_string(std::vector<uint8_t>& out, const std::string& s) {
    append<uint64_t>(out, s.size());
    out.insert(out.end(), s.begin(), s.end());
}

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

// Bytes of f32 rows converted per batch; bounds the writer's memory whatever the model's size.
constexpr uint64_t kBatchBytes = 16u << 20;

}  // namespace

// Where the bytes go: a buffered file or a vector.
class GgufWriter::Sink {
public:
    virtual ~Sink() = default;
    virtual void put(const uint8_t* p, size_t n) = 0;
    void put(const std::vector<uint8_t>& v) { put(v.data(), v.size()); }
    void zeros(uint64_t n) {
        static const uint8_t z[256] = {};
        while (n > 0) {
            const size_t k = size_t(std::min<uint64_t>(n, sizeof z));
            put(z, k);
            n -= k;
        }
    }
    uint64_t written = 0;
};

GgufWriter::GgufWriter(uint32_t alignment) : alignment_(alignment) {
    if (alignment == 0 || !std::has_single_bit(alignment))
        throw std::invalid_argument("GGUF alignment " + std::to_string(alignment) + " is not a power of two");
}

// ---- metadata ------------------------------------------------------------------------------

void GgufWriter::add_kv(const std::string& key, GgufType type, std::vector<uint8_t> encoded) {
    if (key.empty()) throw std::invalid_argument("GGUF metadata key is empty");
    for (const auto& kv : kvs_)
        if (kv.key == key) throw std::invalid_argument("GGUF metadata key '" + key + "' added twice");
    kvs_.push_back({key, type, std::move(encoded)});
}

#define APR_GGUF_SCALAR(fn, ctype, gtype)                  \
    void GgufWriter::fn(const std::string& key, ctype v) { \
        std::vector<uint8_t> e;                            \
        append<ctype>(e, v);                               \
        add_kv(key, GgufType::gtype, std::move(e));        \
    }
APR_GGUF_SCALAR(add_u8, uint8_t, UINT8)
APR_GGUF_SCALAR(add_i8, int8_t, INT8)
APR_GGUF_SCALAR(add_u16, uint16_t, UINT16)
APR_GGUF_SCALAR(add_i16, int16_t, INT16)
APR_GGUF_SCALAR(add_u32, uint32_t, UINT32)
APR_GGUF_SCALAR(add_i32, int32_t, INT32)
APR_GGUF_SCALAR(add_u64, uint64_t, UINT64)
APR_GGUF_SCALAR(add_i64, int64_t, INT64)
APR_GGUF_SCALAR(add_f32, float, FLOAT32)
APR_GGUF_SCALAR(add_f64, double, FLOAT64)
#undef APR_GGUF_SCALAR

void GgufWriter::add_bool(const std::string& key, bool v) {
    add_kv(key, GgufType::BOOL, {uint8_t(v ? 1 : 0)});
}

void GgufWriter::add_string(const std::string& key, const std::string& v) {
    std::vector<uint8_t> e;
    append_string(e, v);
    add_kv(key, GgufType::STRING, std::move(e));
}

void GgufWriter::add_int_array(const std::string& key, GgufType et, std::span<const int64_t> values) {
    if (et == GgufType::FLOAT32 || et == GgufType::FLOAT64 || et == GgufType::STRING || et == GgufType::ARRAY ||
        uint32_t(et) > uint32_t(GgufType::FLOAT64))
        throw std::invalid_argument("GGUF array '" + key + "': element type is not an integer or bool type");
    std::vector<uint8_t> e;
    append<uint32_t>(e, uint32_t(et));
    append<uint64_t>(e, values.size());
    auto check = [&](int64_t v, int64_t lo, int64_t hi) {
        if (v < lo || v > hi)
            throw std::invalid_argument("GGUF array '" + key + "': value " + std::to_string(v) +
                                        " does not fit its element type");
    };
    for (const int64_t v : values) {
        switch (et) {
            case GgufType::UINT8: check(v, 0, 255); append<uint8_t>(e, uint8_t(v)); break;
            case GgufType::BOOL: check(v, 0, 1); append<uint8_t>(e, uint8_t(v)); break;
            case GgufType::INT8: check(v, -128, 127); append<int8_t>(e, int8_t(v)); break;
            case GgufType::UINT16: check(v, 0, 65535); append<uint16_t>(e, uint16_t(v)); break;
            case GgufType::INT16: check(v, -32768, 32767); append<int16_t>(e, int16_t(v)); break;
            case GgufType::UINT32: check(v, 0, 0xffffffffll); append<uint32_t>(e, uint32_t(v)); break;
            case GgufType::INT32: check(v, INT32_MIN, INT32_MAX); append<int32_t>(e, int32_t(v)); break;
            case GgufType::UINT64: check(v, 0, INT64_MAX); append<uint64_t>(e, uint64_t(v)); break;
            case GgufType::INT64: append<int64_t>(e, v); break;
            default: throw std::invalid_argument("GGUF array '" + key + "': element type is not an integer type");
        }
    }
    add_kv(key, GgufType::ARRAY, std::move(e));
}

void GgufWriter::add_float_array(const std::string& key, GgufType et, std::span<const double> values) {
    if (et != GgufType::FLOAT32 && et != GgufType::FLOAT64)
        throw std::invalid_argument("GGUF array '" + key + "': element type is not FLOAT32 or FLOAT64");
    std::vector<uint8_t> e;
    append<uint32_t>(e, uint32_t(et));
    append<uint64_t>(e, values.size());
    for (const double v : values) {
        if (et == GgufType::FLOAT32) append<float>(e, float(v)); else append<double>(e, v);
    }
    add_kv(key, GgufType::ARRAY, std::move(e));
}

void GgufWriter::add_string_array(const std::string& key, const std::vector<std::string>& values) {
    std::vector<uint8_t> e;
    append<uint32_t>(e, uint32_t(GgufType::STRING));
    append<uint64_t>(e, values.size());
    for (const auto& s : values) append_string(e, s);
    add_kv(key, GgufType::ARRAY, std::move(e));
}

// ---- tensors -------------------------------------------------------------------------------

GgufWriter::Tensor& GgufWriter::new_tensor(const std::string& name, uint32_t type, const std::vector<uint64_t>& ne) {
    if (name.empty()) throw std::invalid_argument("GGUF tensor name is empty");
    for (const auto& t : tensors_)
        if (t.name == name) throw std::invalid_argument("GGUF tensor '" + name + "' added twice");
    const auto traits = ggml_type_traits(type);
    if (!traits) throw std::invalid_argument("tensor '" + name + "': " + ggml_type_name(type) + " is not supported");
    if (ne.empty() || ne.size() > 4) throw std::invalid_argument("tensor '" + name + "': needs 1 to 4 dimensions");
    uint64_t n = 1;
    for (uint64_t d : ne) {
        if (d == 0 || d > uint64_t(INT64_MAX) / n) throw std::invalid_argument("tensor '" + name + "': bad dimensions");
        n *= d;
    }
    if (ne[0] % traits->block_size != 0)
        throw std::invalid_argument("tensor '" + name + "': row length " + std::to_string(ne[0]) + " is not a multiple of " +
                                    traits->name + "'s block size " + std::to_string(traits->block_size));
    Tensor t;
    t.name = name;
    t.type = type;
    t.ne = ne;
    t.n_bytes = n / traits->block_size * traits->type_size;
    tensors_.push_back(std::move(t));
    return tensors_.back();
}

void GgufWriter::add_tensor(const std::string& name, uint32_t type, const std::vector<uint64_t>& ne,
                            std::vector<uint8_t> bytes) {
    Tensor& t = new_tensor(name, type, ne);
    if (bytes.size() != t.n_bytes) {
        const uint64_t want = t.n_bytes;
        tensors_.pop_back();
        throw std::invalid_argument("tensor '" + name + "': " + std::to_string(bytes.size()) + " bytes given, its shape takes " +
                                    std::to_string(want));
    }
    t.bytes = std::move(bytes);
}

void GgufWriter::add_tensor_f32(const std::string& name, uint32_t type, const std::vector<uint64_t>& ne,
                                const std::vector<float>& values) {
    Tensor& t = new_tensor(name, type, ne);
    const uint64_t row_len = ne[0], n_rows = t.n_bytes / row_size(type, int64_t(row_len));
    if (values.size() != row_len * n_rows) {
        tensors_.pop_back();
        throw std::invalid_argument("tensor '" + name + "': " + std::to_string(values.size()) +
                                    " values given for its shape of " + std::to_string(row_len * n_rows));
    }
    const size_t rb = row_size(type, int64_t(row_len));
    t.bytes.resize(t.n_bytes);
    for (uint64_t r = 0; r < n_rows; ++r) quantize_row(type, values.data() + r * row_len, t.bytes.data() + r * rb, int64_t(row_len));
}

void GgufWriter::add_tensor_rows(const std::string& name, uint32_t type, const std::vector<uint64_t>& ne, RowFn rows) {
    if (!rows) throw std::invalid_argument("tensor '" + name + "': no row function");
    new_tensor(name, type, ne).rows = std::move(rows);
}

// ---- writing -------------------------------------------------------------------------------

void GgufWriter::write_to(Sink& sink, unsigned n_threads) const {
    if (n_threads == 0) n_threads = std::clamp(std::thread::hardware_concurrency(), 1u, 8u);

    bool has_alignment_key = false;
    for (const auto& kv : kvs_) has_alignment_key |= kv.key == "general.alignment";
    const bool add_alignment_key = alignment_ != 32 && !has_alignment_key;

    std::vector<uint8_t> head;
    head.insert(head.end(), {'G', 'G', 'U', 'F'});
    append<uint32_t>(head, 3);
    append<uint64_t>(head, tensors_.size());
    append<uint64_t>(head, kvs_.size() + (add_alignment_key ? 1 : 0));
    for (const auto& kv : kvs_) {
        append_string(head, kv.key);
        append<uint32_t>(head, uint32_t(kv.type));
        head.insert(head.end(), kv.encoded.begin(), kv.encoded.end());
    }
    if (add_alignment_key) {
        append_string(head, "general.alignment");
        append<uint32_t>(head, uint32_t(GgufType::UINT32));
        append<uint32_t>(head, alignment_);
    }
    uint64_t offset = 0;
    for (const auto& t : tensors_) {
        append_string(head, t.name);
        append<uint32_t>(head, uint32_t(t.ne.size()));
        for (uint64_t d : t.ne) append<uint64_t>(head, d);
        append<uint32_t>(head, t.type);
        append<uint64_t>(head, offset);
        offset = align_up(offset + t.n_bytes, alignment_);
    }
    sink.put(head);
    sink.zeros(align_up(head.size(), alignment_) - head.size());

    std::vector<uint8_t> batch;
    for (const auto& t : tensors_) {
        if (!t.rows) {
            sink.put(t.bytes);
        } else {
            const uint64_t row_len = t.ne[0];
            const size_t rb = row_size(t.type, int64_t(row_len));
            const uint64_t n_rows = t.n_bytes / rb;
            const uint64_t rows_per_batch = std::max<uint64_t>(1, kBatchBytes / (row_len * 4));
            for (uint64_t first = 0; first < n_rows; first += rows_per_batch) {
                const uint64_t count = std::min(rows_per_batch, n_rows - first);
                batch.resize(count * rb);
                // Each thread converts an interleaved share of the batch's rows; the bytes land
                // in place, so the result does not depend on the number of threads.
                auto work = [&](unsigned k, unsigned stride) {
                    std::vector<float> row(row_len);
                    for (uint64_t i = k; i < count; i += stride) {
                        t.rows(first + i, row.data());
                        quantize_row(t.type, row.data(), batch.data() + i * rb, int64_t(row_len));
                    }
                };
                const unsigned nt = unsigned(std::min<uint64_t>(n_threads, count));
                if (nt <= 1) {
                    work(0, 1);
                } else {
                    std::vector<std::thread> pool;
                    std::exception_ptr error;
                    std::mutex error_mutex;
                    for (unsigned k = 0; k < nt; ++k)
                        pool.emplace_back([&, k] {
                            try {
                                work(k, nt);
                            } catch (...) {
                                std::lock_guard lock(error_mutex);
                                if (!error) error = std::current_exception();
                            }
                        });
                    for (auto& th : pool) th.join();
                    if (error) std::rethrow_exception(error);
                }
                sink.put(batch);
            }
        }
        sink.zeros(align_up(t.n_bytes, alignment_) - t.n_bytes);
    }
}

namespace {

class MemorySink : public GgufWriter::Sink {
public:
    void put(const uint8_t* p, size_t n) override {
        bytes.insert(bytes.end(), p, p + n);
        written += n;
    }
    std::vector<uint8_t> bytes;
};

class FileSink : public GgufWriter::Sink {
public:
    explicit FileSink(const std::string& path) : path_(path) {
        f_ = std::fopen(path.c_str(), "wb");
        if (!f_) throw std::system_error(errno, std::generic_category(), "cannot create " + path);
        std::setvbuf(f_, nullptr, _IOFBF, 4u << 20);
    }
    ~FileSink() override {
        if (f_) std::fclose(f_);
    }
    void put(const uint8_t* p, size_t n) override {
        if (n && std::fwrite(p, 1, n, f_) != n) throw std::system_error(errno, std::generic_category(), "cannot write " + path_);
        written += n;
    }
    void close() {
        std::FILE* f = f_;
        f_ = nullptr;
        if (std::fclose(f) != 0) throw std::system_error(errno, std::generic_category(), "cannot write " + path_);
    }

private:
    std::string path_;
    std::FILE* f_ = nullptr;
};

}  // namespace

void GgufWriter::write(const std::string& path, unsigned n_threads) const {
    const std::string tmp = path + ".tmp";
    try {
        FileSink sink(tmp);
        write_to(sink, n_threads);
        sink.close();
        std::filesystem::rename(tmp, path);
    } catch (...) {
        std::error_code ec;
        std::filesystem::remove(tmp, ec);
        throw;
    }
}

std::vector<uint8_t> GgufWriter::to_bytes(unsigned n_threads) const {
    MemorySink sink;
    write_to(sink, n_threads);
    return std::move(sink.bytes);
}

}  // namespace apr
