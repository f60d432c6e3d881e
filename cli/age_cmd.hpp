// `hetpipe keygen`, `encrypt`, `decrypt`: passphrases, key files, terminal checks.
#pragma once

#include <atomic>
#include <string>

namespace hetpipe::cli {

// The passphrase from the environment variable `env_name` when given (usage_error when unset),
// else from the terminal with echo off (twice when `confirm`). usage_error without a terminal;
// cancelled, with the echo back on, once *cancel is set (a first SIGINT at the prompt).
std::string read_passphrase(const std::string& env_name, bool confirm,
                            const std::atomic<bool>* cancel);

// Writes a new identity to `path` ("-" = stdout) as age-keygen does, the file created with mode
// 0600 through a temporary file (an existing file is not overwritten); returns the recipient.
std::string write_new_key(const std::string& path);

}  // namespace hetpipe::cli
