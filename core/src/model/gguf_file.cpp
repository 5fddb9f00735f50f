#include "model/gguf_file.hpp"
