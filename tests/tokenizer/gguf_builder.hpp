// Builds small GGUF v3 files in memory (metadata only, no tensors) so that tokenizer tests can
// describe exactly the vocabulary they need, including broken ones.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "model/gguf_file.hpp"

namespace apr::test {

class GgufBuilder {
public:
    GgufBuilder& str(const std::string& key, const std::string& value) {
        header(key, GgufType::STRING);
        put_string(value);
        return *this;
    }
    GgufBuilder& u32(const std::string& key, uint32_t value) {
        header(key, GgufType::UINT32);
        put(value);
        return *this;
    }
    GgufBuilder& boolean(const std::string& key, bool value) {
        header(key, GgufType::BOOL);
        put(static_cast<uint8_t>(value ? 1 : 0));
        return *this;
    }
    GgufBuilder& strings(const std::string& key, const std::vector<std::string>& values) {
        array_header(key, GgufType::STRING, values.size());
        for (const auto& v : values) put_string(v);
        return *this;
    }
    GgufBuilder& floats(const std::string& key, const std::vector<float>& values) {
        array_header(key, GgufType::FLOAT32, values.size());
        for (float v : values) put(v);
        return *this;
    }
    GgufBuilder& int32s(const std::string& key, const std::vector<int32_t>& values) {
        array_header(key, GgufType::INT32, values.size());
        for (int32_t v : values) put(v);
        return *this;
    }

    // The file's bytes: header, the metadata in the order it was added, padding to 32.
    std::vector<uint8_t> bytes() const {
        std::vector<uint8_t> out;
        auto append = [&](const void* p, size_t n) {
            const auto* b = static_cast<const uint8_t*>(p);
            out.insert(out.end(), b, b + n);
        };
        append("GGUF", 4);
        const uint32_t version = 3;
        const uint64_t n_tensors = 0;
        append(&version, 4);
        append(&n_tensors, 8);
        append(&n_kv_, 8);
        out.insert(out.end(), kv_.begin(), kv_.end());
        while (out.size() % 32 != 0) out.push_back(0);
        return out;
    }

private:
    template <typename T>
    void put(T v) {
        uint8_t b[sizeof(T)];
        std::memcpy(b, &v, sizeof(T));
        kv_.insert(kv_.end(), b, b + sizeof(T));
    }
    void put_string(const std::string& s) {
        put(static_cast<uint64_t>(s.size()));
        kv_.insert(kv_.end(), s.begin(), s.end());
    }
    void header(const std::string& key, GgufType type) {
        ++n_kv_;
        put_string(key);
        put(static_cast<uint32_t>(type));
    }
    void array_header(const std::string& key, GgufType element, size_t n) {
        header(key, GgufType::ARRAY);
        put(static_cast<uint32_t>(element));
        put(static_cast<uint64_t>(n));
    }

    uint64_t n_kv_ = 0;
    std::vector<uint8_t> kv_;
};

// A parsed in-memory file together with the bytes it points into.
struct MemoryGguf {
    std::vector<uint8_t> bytes;
    std::unique_ptr<GgufFile> file;
    explicit MemoryGguf(const GgufBuilder& b) : bytes(b.bytes()), file(GgufFile::from_memory(bytes, "<test vocab>")) {}
};

}  // namespace apr::test
