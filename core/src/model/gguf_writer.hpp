// GgufWriter: builds a GGUF v3 file — metadata of every GGUF value type and tensors of every
// supported type — and streams it to disk. Tensor contents come either as bytes already in the
// tensor's type or from a callback that produces one f32 row at a time, which the writer
// quantizes; with callbacks a multi-gigabyte model is written without ever being held in memory.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "model/gguf_file.hpp"

namespace apr {

class GgufWriter {
public:
    // Produces row `row` (0-based over ne[1]*ne[2]*ne[3]) of a tensor as ne[0] floats at `out`.
    // Called from several threads at once for different rows: it must be thread-safe, and a
    // row's values must depend only on `row` for the output to be reproducible.
    using RowFn = std::function<void(uint64_t row, float* out)>;

    // `alignment` of the data section and of every tensor (a power of two; 32 is GGUF's
    // default, anything else is recorded as general.alignment).
    explicit GgufWriter(uint32_t alignment = 32);

    // ---- metadata (keys must be unique; std::invalid_argument otherwise) ----------------------
    void add_u8(const std::string& key, uint8_t v);
    void add_i8(const std::string& key, int8_t v);
    void add_u16(const std::string& key, uint16_t v);
    void add_i16(const std::string& key, int16_t v);
    void add_u32(const std::string& key, uint32_t v);
    void add_i32(const std::string& key, int32_t v);
    void add_u64(const std::string& key, uint64_t v);
    void add_i64(const std::string& key, int64_t v);
    void add_f32(const std::string& key, float v);
    void add_f64(const std::string& key, double v);
    void add_bool(const std::string& key, bool v);
    void add_string(const std::string& key, const std::string& v);
    // Arrays of an integer or bool element type (each value must fit the element type).
    void add_int_array(const std::string& key, GgufType element_type, std::span<const int64_t> values);
    // Arrays of FLOAT32 or FLOAT64.
    void add_float_array(const std::string& key, GgufType element_type, std::span<const double> values);
    void add_string_array(const std::string& key, const std::vector<std::string>& values);

    // ---- tensors (names must be unique; ne has 1..4 dims, ne[0] whole blocks of `type`) -------
    // `bytes` is the tensor's data in `type`, exactly the size its shape implies.
    void add_tensor(const std::string& name, uint32_t type, const std::vector<uint64_t>& ne, std::vector<uint8_t> bytes);
    // f32 values, converted to `type` when written.
    void add_tensor_f32(const std::string& name, uint32_t type, const std::vector<uint64_t>& ne,
                        const std::vector<float>& values);
    // Rows produced on demand by `rows` and converted to `type` when written.
    void add_tensor_rows(const std::string& name, uint32_t type, const std::vector<uint64_t>& ne, RowFn rows);

    size_t n_tensors() const { return tensors_.size(); }
    size_t n_kv() const { return kvs_.size(); }

    // Writes the file (to `path`.tmp, renamed over `path` when complete). n_threads 0 = up to
    // 8 hardware threads. Throws std::system_error on I/O failure.
    void write(const std::string& path, unsigned n_threads = 0) const;
    // The same bytes, in memory (tests).
    std::vector<uint8_t> to_bytes(unsigned n_threads = 1) const;

    // Where write_to puts the bytes (a file or memory); an implementation detail.
    class Sink;

private:
    struct Kv {
        std::string key;
        GgufType type;
        std::vector<uint8_t> encoded;  // the value's bytes (after the type id)
    };
    struct Tensor {
        std::string name;
        uint32_t type;
        std::vector<uint64_t> ne;
        uint64_t n_bytes;
        std::vector<uint8_t> bytes;  // when given as bytes
        RowFn rows;                  // otherwise
    };
    void add_kv(const std::string& key, GgufType type, std::vector<uint8_t> encoded);
    Tensor& new_tensor(const std::string& name, uint32_t type, const std::vector<uint64_t>& ne);
    void write_to(Sink& sink, unsigned n_threads) const;

    uint32_t alignment_;
    std::vector<Kv> kvs_;
    std::vector<Tensor> tensors_;
};

}  // namespace apr
