// Text and JSON renderings of results for the command line.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <hetpipe/hetpipe.hpp>
#include <nlohmann/json.hpp>

namespace hetpipe::cli {

// "1 CPU lane", "2 CPU lanes": n and the noun, plural by an s unless n is 1.
std::string count_of(std::uint64_t n, const std::string& noun);

// Shortest decimal text that parses back to the same double ("nan", "inf", "-inf" otherwise).
std::string format_double(double v);
// A double as JSON: a number that parses back to the same bits, or the strings "nan", "inf",
// "-inf" (JSON has no non-finite numbers).
nlohmann::json json_double(double v);

// j as indented JSON text. A file name that is not valid UTF-8 (names are bytes) gets U+FFFD for
// each bad byte: JSON text must be UTF-8, and dump() would throw.
std::string json_text(const nlohmann::json& j, int indent = 2);

// The --json text of stats results: json_text of their document, written without building it.
// Where errors[i] is not empty, entry i is {"error": errors[i], "file": results[i].file}.
std::string stats_json_text(const std::vector<stats_result>& results,
                            const std::vector<std::string>& errors = {});
std::string to_table(const std::vector<stats_result>& results);
nlohmann::json to_json(const system_info& s);
// [{"file", "algorithm", "digest" (hex), "bytes"}]
nlohmann::json to_json(const checksum_result& result, const checksum_spec& spec);  // one entry
std::string to_text(const system_info& s);

// A name as sha256sum prints it: with a backslash, a newline or a carriage return in it, those
// escaped (escaped set) and the whole line then marked by a leading backslash.
std::string printed_name(const std::string& name, bool& escaped);
// "hetpipe: FILE: reason" on stderr, one line whatever the name holds (printed_name, the line
// marked by a leading backslash when escaped); without a file, "hetpipe: reason".
void print_error(const std::string& file, const std::string& reason);

}  // namespace hetpipe::cli
