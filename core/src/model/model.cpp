#include "model/model.hpp"

#include <sys/stat.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <limits>

#include "model/ggml_type.hpp"

namespace apr {

namespace {

struct ArchInfo {
    const char* name;
    apr_arch arch;
    apr_rope_type rope;
};

constexpr ArchInfo kArchs[] = {
    {"llama", APR_ARCH_LLAMA, APR_ROPE_NORM},
    {"qwen2", APR_ARCH_QWEN2, APR_ROPE_NEOX},
    {"qwen3", APR_ARCH_QWEN3, APR_ROPE_NEOX},
};

std::string shape_text(const std::array<uint64_t, 4>& ne, uint32_t n_dims) {
    std::string s = "[";
    for (uint32_t d = 0; d < n_dims; ++d) s += (d ? ", " : "") + std::to_string(ne[d]);
    return s + "]";
}

uint64_t fnv1a64(std::span<const uint8_t> bytes) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint8_t b : bytes) {
        h ^= b;
        h *= 0x100000001b3ull;
    }
    return h;
}

// Reads the hyperparameters and checks the tensors of one file; a helper so that every
// message can name the file without repeating it.
class Recognizer {
public:
    explicit Recognizer(const GgufFile& f) : f_(f) {}

    [[noreturn]] void fail(const std::string& problem) const { throw ModelError(f_.path() + ": " + problem); }

    // An integer hyperparameter that fits in uint32. Files may store per-layer values as an
    // array; apr supports only models whose layers agree, so an array must be uniform.
    std::optional<uint32_t> hparam(const std::string& key) const {
        const GgufValue* v = f_.find(key);
        if (!v) return std::nullopt;
        uint64_t value;
        if (v->type == GgufType::ARRAY && !v->ints.empty()) {
            for (int64_t x : v->ints)
                if (x != v->ints[0]) fail("metadata '" + key + "' differs between layers, which apr does not support");
            if (v->ints[0] < 0) fail("metadata '" + key + "' is negative");
            value = uint64_t(v->ints[0]);
        } else {
            value = *f_.get_uint(key);  // throws GgufError naming the key on a wrong type
        }
        if (value > std::numeric_limits<uint32_t>::max())
            fail("metadata '" + key + "' = " + std::to_string(value) + " is out of range");
        return uint32_t(value);
    }

    uint32_t required(const std::string& key) const {
        const auto v = hparam(key);
        if (!v) fail("missing metadata key '" + key + "'");
        if (*v == 0) fail("metadata '" + key + "' is 0");
        return *v;
    }

    const GgufTensorInfo& tensor(const std::string& name) const {
        const GgufTensorInfo* t = f_.find_tensor(name);
        if (!t) fail("missing tensor '" + name + "'");
        return *t;
    }

    // Checks a tensor's shape ([ne0] or [ne0, ne1]) and, for norms and biases, that it is F32.
    void expect(const GgufTensorInfo& t, std::initializer_list<uint64_t> shape, bool must_be_f32) const {
        std::array<uint64_t, 4> want{1, 1, 1, 1}, have{1, 1, 1, 1};
        uint32_t d = 0;
        for (uint64_t x : shape) want[d++] = x;
        for (size_t i = 0; i < t.ne.size(); ++i) have[i] = t.ne[i];
        if (have != want)
            fail("tensor '" + t.name + "' has shape " + shape_text(have, uint32_t(t.ne.size())) + ", expected " +
                 shape_text(want, uint32_t(shape.size())));
        if (must_be_f32 && t.type != APR_TYPE_F32)
            fail("tensor '" + t.name + "' is " + ggml_type_name(t.type) + ", expected F32");
    }

    void expect(const std::string& name, std::initializer_list<uint64_t> shape, bool must_be_f32) const {
        expect(tensor(name), shape, must_be_f32);
    }

    int32_t token_id(const std::string& key, uint32_t n_vocab) const {
        const auto v = f_.get_int(key);
        if (!v) return -1;
        if (*v < 0 || uint64_t(*v) >= n_vocab)
            fail("metadata '" + key + "' = " + std::to_string(*v) + " is not a token id below n_vocab " +
                 std::to_string(n_vocab));
        return int32_t(*v);
    }

private:
    const GgufFile& f_;
};

}  // namespace

std::unique_ptr<Model> Model::load(const std::string& path) { return from_gguf(GgufFile::open(path)); }

std::unique_ptr<Model> Model::from_gguf(std::unique_ptr<GgufFile> file) {
    const GgufFile& f = *file;
    Recognizer r(f);

    const auto arch_name = f.get_string("general.architecture");
    if (!arch_name) r.fail("missing metadata key 'general.architecture'");
    const ArchInfo* arch = nullptr;
    for (const auto& a : kArchs)
        if (*arch_name == a.name) arch = &a;
    if (!arch) r.fail("unsupported architecture '" + *arch_name + "' (apr runs llama, qwen2 and qwen3)");
    if (f.tensors().empty()) r.fail("has no tensors (a vocabulary-only file is not a model)");

    std::unique_ptr<Model> m(new Model());
    apr_model_view& v = m->view_;
    v.struct_size = sizeof(apr_model_view);
    v.arch = arch->arch;
    v.rope_type = arch->rope;
    const std::string p = *arch_name + ".";

    v.n_ctx_train = r.required(p + "context_length");
    v.n_embd = r.required(p + "embedding_length");
    v.n_layer = r.required(p + "block_count");
    v.n_ff = r.required(p + "feed_forward_length");
    v.n_head = r.required(p + "attention.head_count");
    v.n_head_kv = r.hparam(p + "attention.head_count_kv").value_or(v.n_head);
    if (v.n_head_kv == 0 || v.n_head % v.n_head_kv != 0)
        r.fail("attention.head_count " + std::to_string(v.n_head) + " is not a multiple of head_count_kv " +
               std::to_string(v.n_head_kv));
    if (const auto kl = r.hparam(p + "attention.key_length")) {
        v.head_dim = *kl;
    } else {
        if (v.n_embd % v.n_head != 0)
            r.fail("embedding_length " + std::to_string(v.n_embd) + " is not a multiple of head_count " +
                   std::to_string(v.n_head) + " and there is no attention.key_length");
        v.head_dim = v.n_embd / v.n_head;
    }
    if (v.head_dim == 0 || v.head_dim % 2 != 0) r.fail("head dimension " + std::to_string(v.head_dim) + " is not even");
    if (const auto vl = r.hparam(p + "attention.value_length"); vl && *vl != v.head_dim)
        r.fail("attention.value_length " + std::to_string(*vl) + " differs from key_length " + std::to_string(v.head_dim) +
               ", which apr does not support");
    v.n_rot = r.hparam(p + "rope.dimension_count").value_or(v.head_dim);
    if (v.n_rot != v.head_dim)
        r.fail("rope.dimension_count " + std::to_string(v.n_rot) + " differs from the head dimension " +
               std::to_string(v.head_dim) + " (partial RoPE is not supported)");

    const auto eps = f.get_float(p + "attention.layer_norm_rms_epsilon");
    if (!eps) r.fail("missing metadata key '" + p + "attention.layer_norm_rms_epsilon'");
    if (!(*eps > 0 && *eps < 1)) r.fail("attention.layer_norm_rms_epsilon " + std::to_string(*eps) + " is not in (0, 1)");
    v.rms_norm_eps = float(*eps);
    const double base = f.get_float(p + "rope.freq_base").value_or(10000.0);
    if (!(base > 1 && base < 1e12)) r.fail("rope.freq_base " + std::to_string(base) + " is out of range");
    v.rope_freq_base = float(base);
    v.rope_freq_scale = 1.0f;
    const std::string scaling = f.get_string(p + "rope.scaling.type").value_or("none");
    if (scaling == "linear") {
        const auto factor = f.get_float(p + "rope.scaling.factor");
        if (!factor || !(*factor > 0 && *factor < 1e6))
            r.fail("linear RoPE scaling needs a positive rope.scaling.factor");
        v.rope_freq_scale = float(1.0 / *factor);
    } else if (scaling != "none") {
        r.fail("RoPE scaling '" + scaling + "' is not supported (only none and linear)");
    }

    // ---- tensors ----------------------------------------------------------------------------
    const GgufTensorInfo& embd = r.tensor("token_embd.weight");
    if (embd.ne.size() < 2 || embd.ne[1] > std::numeric_limits<uint32_t>::max())
        r.fail("tensor 'token_embd.weight' is not a matrix of at most 2^32 rows");
    v.n_vocab = uint32_t(embd.ne[1]);
    r.expect(embd, {v.n_embd, v.n_vocab}, false);
    r.expect("output_norm.weight", {v.n_embd}, true);
    const bool tied = f.find_tensor("output.weight") == nullptr;
    if (!tied) r.expect("output.weight", {v.n_embd, v.n_vocab}, false);
    v.tied_embeddings = tied ? 1 : 0;
    if (const GgufTensorInfo* rf = f.find_tensor("rope_freqs.weight")) r.expect(*rf, {v.n_rot / 2}, true);

    const uint64_t q_dim = uint64_t(v.n_head) * v.head_dim, kv_dim = uint64_t(v.n_head_kv) * v.head_dim;
    for (uint32_t l = 0; l < v.n_layer; ++l) {
        const std::string b = "blk." + std::to_string(l) + ".";
        r.expect(b + "attn_norm.weight", {v.n_embd}, true);
        r.expect(b + "ffn_norm.weight", {v.n_embd}, true);
        r.expect(b + "attn_q.weight", {v.n_embd, q_dim}, false);
        r.expect(b + "attn_k.weight", {v.n_embd, kv_dim}, false);
        r.expect(b + "attn_v.weight", {v.n_embd, kv_dim}, false);
        r.expect(b + "attn_output.weight", {q_dim, v.n_embd}, false);
        r.expect(b + "ffn_gate.weight", {v.n_embd, v.n_ff}, false);
        r.expect(b + "ffn_up.weight", {v.n_embd, v.n_ff}, false);
        r.expect(b + "ffn_down.weight", {v.n_ff, v.n_embd}, false);
        if (arch->arch == APR_ARCH_QWEN2) {
            r.expect(b + "attn_q.bias", {q_dim}, true);
            r.expect(b + "attn_k.bias", {kv_dim}, true);
            r.expect(b + "attn_v.bias", {kv_dim}, true);
        }
        if (arch->arch == APR_ARCH_QWEN3) {
            r.expect(b + "attn_q_norm.weight", {v.head_dim}, true);
            r.expect(b + "attn_k_norm.weight", {v.head_dim}, true);
        }
    }

    v.bos_token_id = r.token_id("tokenizer.ggml.bos_token_id", v.n_vocab);
    v.eos_token_id = r.token_id("tokenizer.ggml.eos_token_id", v.n_vocab);

    // ---- the view -------------------------------------------------------------------------
    // Every tensor of the file (unknown extras are harmless to backends), plus the tied alias.
    m->tensor_names_.reserve(f.tensors().size() + 1);
    for (const auto& t : f.tensors()) m->tensor_names_.push_back(t.name);
    if (tied) m->tensor_names_.push_back("output.weight");
    m->tensor_views_.reserve(m->tensor_names_.size());
    for (size_t i = 0; i < m->tensor_names_.size(); ++i) {
        const GgufTensorInfo& t = i < f.tensors().size() ? f.tensors()[i] : embd;
        apr_tensor_view tv{};
        tv.name = m->tensor_names_[i].c_str();
        tv.type = t.type;
        tv.n_dims = uint32_t(t.ne.size());
        for (int d = 0; d < 4; ++d) tv.ne[d] = d < int(t.ne.size()) ? t.ne[d] : 1;
        tv.data = t.data;
        tv.n_bytes = t.n_bytes;
        m->tensor_views_.push_back(tv);
    }
    v.n_tensors = uint32_t(m->tensor_views_.size());
    v.tensors = m->tensor_views_.data();

    m->arch_name_ = *arch_name;
    m->model_name_ = f.get_string("general.name").value_or(std::filesystem::path(f.path()).filename().string());
    v.arch_name = m->arch_name_.c_str();
    v.model_name = m->model_name_.c_str();

    // ---- identity -------------------------------------------------------------------------
    struct stat st {};
    int64_t mtime_ns = 0;
    std::string where = f.path();
    if (::stat(f.path().c_str(), &st) == 0) {
        mtime_ns = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
        std::error_code ec;
        const auto abs = std::filesystem::absolute(f.path(), ec);
        if (!ec) where = abs.string();
    }
    const auto bytes = f.bytes();
    char hash[17];
    std::snprintf(hash, sizeof hash, "%016llx",
                  static_cast<unsigned long long>(fnv1a64(bytes.first(std::min<size_t>(bytes.size(), 1u << 20)))));
    m->identity_ = "size=" + std::to_string(f.file_size()) + ";mtime_ns=" + std::to_string(mtime_ns) +
                   ";fnv1a64_1mib=" + hash + ";path=" + where;

    m->file_ = std::move(file);
    return m;
}

}  // namespace apr
