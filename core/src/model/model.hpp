// Model: a GGUF file recognised as one of the supported architectures, and the read-only
// apr_model_view (sdk/include/apr/backend.h) that the core hands to backends and to the
// reference forward. The view's tensor pointers point into the file's mapping, which the
// Model keeps alive.
#pragma once

#include <apr/backend.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/gguf_file.hpp"

namespace apr {

// A file that is valid GGUF but not a model apr can run (unknown architecture, unsupported
// weight type, missing or mis-shaped tensor). what() names the file and the culprit.
class ModelError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class Model {
public:
    // Opens, validates and recognises the file. Throws GgufError or ModelError.
    static std::unique_ptr<Model> load(const std::string& path);
    // The same for a file already open (tests).
    static std::unique_ptr<Model> from_gguf(std::unique_ptr<GgufFile> file);

    const GgufFile& file() const { return *file_; }
    const apr_model_view& view() const { return view_; }
    // A stable identity of the file's content for caches: size, mtime and a hash of the header.
    const std::string& identity() const { return identity_; }

private:
    Model() = default;
    std::unique_ptr<GgufFile> file_;
    std::string arch_name_;
    std::string model_name_;
    std::vector<std::string> tensor_names_;  // storage behind view_.tensors[i].name
    std::vector<apr_tensor_view> tensor_views_;
    apr_model_view view_{};
    std::string identity_;
};

}  // namespace apr
