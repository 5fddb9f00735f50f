// GgufFile: a memory-mapped, fully validated GGUF v2/v3 file.
//
// Everything is checked when the file is opened (magic, version, counts against the file
// size, string and array lengths, duplicate keys and tensor names, dimensions, type ids, every
// tensor's offset and size inside the data section, alignment), so that later reads can trust
// the structure. A bad file throws GgufError naming the byte offset and the field.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace apr {

// A malformed, truncated or unsupported file. what() reads
// "<path>: <field> at offset <offset>: <problem>".
class GgufError : public std::runtime_error {
public:
    GgufError(const std::string& path, uint64_t offset, const std::string& field, const std::string& problem);
    uint64_t offset() const { return offset_; }
    const std::string& field() const { return field_; }

private:
    uint64_t offset_;
    std::string field_;
};

// GGUF metadata value types, as numbered in the format.
enum class GgufType : uint32_t {
    UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6,
    BOOL = 7, STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};

// The format's name of a metadata value type ("uint32", "string", "array"), for messages.
std::string gguf_type_name(GgufType t);

// One metadata value. Scalars are widened on read; arrays keep their element type.
struct GgufValue {
    GgufType type = GgufType::UINT8;
    GgufType array_type = GgufType::UINT8;  // element type when type == ARRAY
    // Scalars: the value. Integers and bools as int64/uint64, floats as double.
    std::variant<std::monostate, int64_t, uint64_t, double, bool, std::string> scalar;
    // Arrays: exactly one of these is filled, by element type family.
    std::vector<int64_t> ints;          // any integer or bool element type
    std::vector<double> floats;         // FLOAT32, FLOAT64
    std::vector<std::string> strings;   // STRING
    uint64_t array_length = 0;
    uint64_t offset = 0;                // where the value starts in the file (for messages)
    uint64_t index = 0;                 // its position among the key/value pairs ("kv[index]")
};

struct GgufTensorInfo {
    std::string name;
    uint32_t type = 0;                  // ggml type id (apr_tensor_type)
    std::vector<uint64_t> ne;           // dims, innermost first
    uint64_t offset = 0;                // from the start of the data section
    uint64_t n_bytes = 0;               // from the type's block layout
    const uint8_t* data = nullptr;      // into the mapping
    uint64_t info_offset = 0;           // where its tensor_infos entry starts in the file
    uint64_t n_elements() const;
};

class GgufFile {
public:
    // Maps and validates the file. Throws GgufError (bad content) or std::system_error (I/O).
    static std::unique_ptr<GgufFile> open(const std::string& path);
    // The same, on bytes already in memory (tests, the fuzzer); `bytes` must outlive the object.
    static std::unique_ptr<GgufFile> from_memory(std::span<const uint8_t> bytes, const std::string& name = "<memory>");
    ~GgufFile();
    GgufFile(const GgufFile&) = delete;
    GgufFile& operator=(const GgufFile&) = delete;

    const std::string& path() const { return path_; }
    uint32_t version() const { return version_; }
    uint64_t file_size() const { return size_; }
    uint64_t alignment() const { return alignment_; }
    uint64_t data_offset() const { return data_offset_; }
    // The whole file's bytes (the mapping, or the memory given to from_memory).
    std::span<const uint8_t> bytes() const { return {base_, size_t(size_)}; }

    // Metadata. The typed getters return nullopt when the key is absent and throw GgufError
    // when it is present with an incompatible type (naming the key).
    bool has(std::string_view key) const;
    const GgufValue* find(std::string_view key) const;
    std::optional<std::string> get_string(std::string_view key) const;
    std::optional<uint64_t> get_uint(std::string_view key) const;    // any non-negative integer type
    std::optional<int64_t> get_int(std::string_view key) const;      // any integer type
    std::optional<double> get_float(std::string_view key) const;     // float or integer types
    std::optional<bool> get_bool(std::string_view key) const;
    const std::vector<std::string>* get_string_array(std::string_view key) const;
    const std::vector<double>* get_float_array(std::string_view key) const;
    const std::vector<int64_t>* get_int_array(std::string_view key) const;
    const std::map<std::string, GgufValue, std::less<>>& metadata() const { return metadata_; }

    // Tensors, in file order.
    const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
    const GgufTensorInfo* find_tensor(std::string_view name) const;

private:
    GgufFile() = default;
    void parse();
    // The GgufValue of `key` when it has the wanted type family; throws when it has another.
    [[noreturn]] void throw_wrong_type(std::string_view key, const GgufValue& v, const char* wanted) const;

    std::string path_;
    const uint8_t* base_ = nullptr;
    uint64_t size_ = 0;
    void* mapping_ = nullptr;  // non-null when we own an mmap of size_ bytes
    uint32_t version_ = 0;
    uint64_t alignment_ = 32;
    uint64_t data_offset_ = 0;
    std::map<std::string, GgufValue, std::less<>> metadata_;
    std::vector<GgufTensorInfo> tensors_;
    std::map<std::string, size_t, std::less<>> tensor_index_;
};

}  // namespace apr
