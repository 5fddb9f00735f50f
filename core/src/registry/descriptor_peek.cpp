#include "registry/descriptor_peek.hpp"

#include <apr/backend.h>
#include <elf.h>

#include <cstddef>
#include <cstring>
#include <fstream>
#include <vector>

namespace apr {

namespace {

class FileReader {
public:
    explicit FileReader(const std::filesystem::path& path) : in_(path, std::ios::binary) {
        if (in_) {
            in_.seekg(0, std::ios::end);
            size_ = static_cast<uint64_t>(in_.tellg());
        }
    }
    bool ok() const { return static_cast<bool>(in_); }
    uint64_t size() const { return size_; }
    bool read(uint64_t offset, void* dst, uint64_t n) {
        if (offset > size_ || n > size_ - offset) return false;
        in_.seekg(static_cast<std::streamoff>(offset));
        in_.read(static_cast<char*>(dst), static_cast<std::streamsize>(n));
        return static_cast<bool>(in_);
    }

private:
    std::ifstream in_;
    uint64_t size_ = 0;
};

}  // namespace

std::optional<DescriptorPeek> peek_descriptor(const std::filesystem::path& plugin, std::string& error) {
    FileReader file(plugin);
    if (!file.ok()) {
        error = "cannot read the file";
        return std::nullopt;
    }
    Elf64_Ehdr eh{};
    if (!file.read(0, &eh, sizeof eh) || std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) {
        error = "not an ELF file";
        return std::nullopt;
    }
    if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_shentsize != sizeof(Elf64_Shdr)) {
        error = "not a 64-bit little-endian ELF file";
        return std::nullopt;
    }
    std::vector<Elf64_Shdr> sections(eh.e_shnum);
    if (eh.e_shnum == 0 || !file.read(eh.e_shoff, sections.data(), sections.size() * sizeof(Elf64_Shdr))) {
        error = "truncated ELF section table";
        return std::nullopt;
    }
    for (const auto& symtab : sections) {
        if (symtab.sh_type != SHT_DYNSYM || symtab.sh_entsize != sizeof(Elf64_Sym)) continue;
        if (symtab.sh_link >= sections.size()) break;
        const Elf64_Shdr& strtab = sections[symtab.sh_link];
        if (strtab.sh_size > (64u << 20) || symtab.sh_size > (64u << 20)) break;
        std::vector<char> names(strtab.sh_size + 1, '\0');
        std::vector<Elf64_Sym> symbols(symtab.sh_size / sizeof(Elf64_Sym));
        if (!file.read(strtab.sh_offset, names.data(), strtab.sh_size) ||
            !file.read(symtab.sh_offset, symbols.data(), symbols.size() * sizeof(Elf64_Sym))) {
            error = "truncated ELF dynamic symbol table";
            return std::nullopt;
        }
        for (const auto& sym : symbols) {
            if (sym.st_name >= strtab.sh_size || sym.st_shndx == SHN_UNDEF || sym.st_shndx >= sections.size()) continue;
            if (std::strcmp(&names[sym.st_name], APR_BACKEND_DESCRIPTOR_SYMBOL) != 0) continue;
            const Elf64_Shdr& home = sections[sym.st_shndx];
            if (home.sh_type == SHT_NOBITS || sym.st_value < home.sh_addr || sym.st_value - home.sh_addr > home.sh_size) {
                error = "the descriptor symbol has no bytes in the file";
                return std::nullopt;
            }
            uint64_t offset = home.sh_offset + (sym.st_value - home.sh_addr);
            // Integer fields only: the pointers are relocated at load time and mean nothing here.
            uint32_t head[2];
            if (sym.st_size < sizeof head || !file.read(offset, head, sizeof head)) {
                error = "the descriptor symbol is smaller than its header";
                return std::nullopt;
            }
            DescriptorPeek peek;
            peek.abi_version = head[0];
            peek.struct_size = head[1];
            if (peek.abi_version == 1 && sym.st_size >= offsetof(apr_backend_desc, flags) + sizeof(uint32_t)) {
                int32_t priority = 0;
                uint32_t flags = 0;
                if (file.read(offset + offsetof(apr_backend_desc, priority), &priority, sizeof priority) &&
                    file.read(offset + offsetof(apr_backend_desc, flags), &flags, sizeof flags)) {
                    peek.priority = priority;
                    peek.flags = flags;
                }
            }
            return peek;
        }
    }
    error = "no exported symbol '" APR_BACKEND_DESCRIPTOR_SYMBOL "'";
    return std::nullopt;
}

}  // namespace apr
