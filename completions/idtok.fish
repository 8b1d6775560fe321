# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_idtok_global_optspecs
    string join \n v/verbose h/help V/version
end

function __fish_idtok_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_idtok_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_idtok_using_subcommand
    set -l cmd (__fish_idtok_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c idtok -n "__fish_idtok_needs_command" -s v -l verbose -d 'Explain to stderr which credentials were chosen and every request sent (-vv adds headers). Secrets are redacted'
complete -c idtok -n "__fish_idtok_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c idtok -n "__fish_idtok_needs_command" -s V -l version -d 'Print version'
complete -c idtok -n "__fish_idtok_needs_command" -f -a "metadata" -d 'Print an ID token from the metadata server (Compute Engine, Cloud Run, GKE, Cloud Functions)'
complete -c idtok -n "__fish_idtok_needs_command" -f -a "impersonate" -d 'Print an ID token for a service account through IAM Credentials generateIdToken'
complete -c idtok -n "__fish_idtok_needs_command" -f -a "print-identity-token" -d 'Print an ID token from the active credentials, as `gcloud auth print-identity-token` does'
complete -c idtok -n "__fish_idtok_needs_command" -f -a "decode" -d 'Show a token\'s header and claims, and optionally verify it against Google\'s keys'
complete -c idtok -n "__fish_idtok_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c idtok -n "__fish_idtok_needs_command" -f -a "man" -d 'Print the man page (roff): idtok(1), or idtok-COMMAND(1) for one subcommand'
complete -c idtok -n "__fish_idtok_using_subcommand metadata" -l audience -l audiences -d 'The audience (`aud`) of the token: the receiving service\'s URL or client id' -r
complete -c idtok -n "__fish_idtok_using_subcommand metadata" -l token-format -d '`full` adds email and instance claims' -r -f -a "standard\t'Without email and instance claims'
full\t'With `email`, `email_verified` and, on Compute Engine, `google.compute_engine`'"
complete -c idtok -n "__fish_idtok_using_subcommand metadata" -l service-account -d 'The service account of the instance: `default` or its email' -r
complete -c idtok -n "__fish_idtok_using_subcommand metadata" -s o -l output -d 'What to print' -r -f -a "token\t'The token and a newline'
header\t'`Authorization: Bearer <token>` and a newline'
json\t'One JSON object with the token, its expiry, audience, email, subject and source'"
complete -c idtok -n "__fish_idtok_using_subcommand metadata" -l min-ttl -d 'Reuse a cached token only while it stays valid at least this many seconds' -r
complete -c idtok -n "__fish_idtok_using_subcommand metadata" -l timeout -d 'The whole command\'s deadline in seconds, retries included' -r
complete -c idtok -n "__fish_idtok_using_subcommand metadata" -l include-license -d 'Include the instance\'s license codes (needs --token-format full)'
complete -c idtok -n "__fish_idtok_using_subcommand metadata" -l no-cache -d 'Neither read nor write the token cache'
complete -c idtok -n "__fish_idtok_using_subcommand metadata" -s v -l verbose -d 'Explain to stderr which credentials were chosen and every request sent (-vv adds headers). Secrets are redacted'
complete -c idtok -n "__fish_idtok_using_subcommand metadata" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c idtok -n "__fish_idtok_using_subcommand impersonate" -l service-account -d 'The service account whose ID token to print' -r
complete -c idtok -n "__fish_idtok_using_subcommand impersonate" -l audience -l audiences -d 'The audience (`aud`) of the token: the receiving service\'s URL or client id' -r
complete -c idtok -n "__fish_idtok_using_subcommand impersonate" -l delegates -d 'The delegation chain, from the caller towards the target' -r
complete -c idtok -n "__fish_idtok_using_subcommand impersonate" -l credential-file-override -d 'Use this credential file and skip the rest of the credential chain' -r -F
complete -c idtok -n "__fish_idtok_using_subcommand impersonate" -s o -l output -d 'What to print' -r -f -a "token\t'The token and a newline'
header\t'`Authorization: Bearer <token>` and a newline'
json\t'One JSON object with the token, its expiry, audience, email, subject and source'"
complete -c idtok -n "__fish_idtok_using_subcommand impersonate" -l min-ttl -d 'Reuse a cached token only while it stays valid at least this many seconds' -r
complete -c idtok -n "__fish_idtok_using_subcommand impersonate" -l timeout -d 'The whole command\'s deadline in seconds, retries included' -r
complete -c idtok -n "__fish_idtok_using_subcommand impersonate" -l include-email -d 'Put `email` and `email_verified` claims in the token'
complete -c idtok -n "__fish_idtok_using_subcommand impersonate" -l allow-self-impersonation -d 'Proceed (with a warning) when the caller is the target service account itself'
complete -c idtok -n "__fish_idtok_using_subcommand impersonate" -l no-cache -d 'Neither read nor write the token cache'
complete -c idtok -n "__fish_idtok_using_subcommand impersonate" -s v -l verbose -d 'Explain to stderr which credentials were chosen and every request sent (-vv adds headers). Secrets are redacted'
complete -c idtok -n "__fish_idtok_using_subcommand impersonate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c idtok -n "__fish_idtok_using_subcommand print-identity-token" -l audiences -l audience -d 'The audience (`aud`); default gcloud\'s client id, or a user login\'s own client id' -r
complete -c idtok -n "__fish_idtok_using_subcommand print-identity-token" -l token-format -d 'Metadata server only: `full` adds email and instance claims' -r -f -a "standard\t'Without email and instance claims'
full\t'With `email`, `email_verified` and, on Compute Engine, `google.compute_engine`'"
complete -c idtok -n "__fish_idtok_using_subcommand print-identity-token" -l impersonate-service-account -d 'Impersonate this service account; with a comma list the last is the target, the others delegates' -r
complete -c idtok -n "__fish_idtok_using_subcommand print-identity-token" -l configuration -d 'The gcloud configuration to read the account and impersonation from' -r
complete -c idtok -n "__fish_idtok_using_subcommand print-identity-token" -l credential-file-override -d 'Use this credential file and skip the rest of the credential chain' -r -F
complete -c idtok -n "__fish_idtok_using_subcommand print-identity-token" -s o -l output -d 'What to print' -r -f -a "token\t'The token and a newline'
header\t'`Authorization: Bearer <token>` and a newline'
json\t'One JSON object with the token, its expiry, audience, email, subject and source'"
complete -c idtok -n "__fish_idtok_using_subcommand print-identity-token" -l min-ttl -d 'Reuse a cached token only while it stays valid at least this many seconds' -r
complete -c idtok -n "__fish_idtok_using_subcommand print-identity-token" -l timeout -d 'The whole command\'s deadline in seconds, retries included' -r
complete -c idtok -n "__fish_idtok_using_subcommand print-identity-token" -l include-email -d 'Put `email` and `email_verified` claims in the token'
complete -c idtok -n "__fish_idtok_using_subcommand print-identity-token" -l include-license -d 'Metadata server only: include license codes (needs --token-format full)'
complete -c idtok -n "__fish_idtok_using_subcommand print-identity-token" -l allow-self-impersonation -d 'Proceed (with a warning) when the caller is the target service account itself'
complete -c idtok -n "__fish_idtok_using_subcommand print-identity-token" -l no-cache -d 'Neither read nor write the token cache'
complete -c idtok -n "__fish_idtok_using_subcommand print-identity-token" -s v -l verbose -d 'Explain to stderr which credentials were chosen and every request sent (-vv adds headers). Secrets are redacted'
complete -c idtok -n "__fish_idtok_using_subcommand print-identity-token" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c idtok -n "__fish_idtok_using_subcommand decode" -l claim -d 'Print this claim\'s value alone on a line: strings bare, other values as compact JSON (repeatable). A name starting with `/` is a JSON pointer: `/google/compute_engine/zone`. A missing claim is exit 6 and prints nothing' -r
complete -c idtok -n "__fish_idtok_using_subcommand decode" -l audience -l audiences -d 'With --verify: the audience the token must carry' -r
complete -c idtok -n "__fish_idtok_using_subcommand decode" -l email -d 'With --verify: the email the token must carry, with email_verified true' -r
complete -c idtok -n "__fish_idtok_using_subcommand decode" -l issuer -d 'With --verify: accept exactly this iss instead of Google\'s (accounts.google.com or https://accounts.google.com; for ES256 IAP assertions https://cloud.google.com/iap)' -r
complete -c idtok -n "__fish_idtok_using_subcommand decode" -l jwks-url -d 'With --verify: fetch the key set (JWKS) from this URL instead of Google\'s, which is picked by the token\'s alg: RS256 https://www.googleapis.com/oauth2/v3/certs, ES256 https://www.gstatic.com/iap/verify/public_key-jwk. Fetched key sets are cached while their Cache-Control max-age allows' -r
complete -c idtok -n "__fish_idtok_using_subcommand decode" -l jwks -d 'With --verify: read the key set (JWKS) from this file, offline; wins over --jwks-url. A file that is not a key set is exit 3' -r -F
complete -c idtok -n "__fish_idtok_using_subcommand decode" -l clock-skew -d 'With --verify: seconds of clock difference tolerated on exp, nbf and iat' -r
complete -c idtok -n "__fish_idtok_using_subcommand decode" -l timeout -d 'With --verify: the whole command\'s deadline in seconds when fetching keys' -r
complete -c idtok -n "__fish_idtok_using_subcommand decode" -l json -d 'Print `{"header": ..., "payload": ...}` on one line and nothing else'
complete -c idtok -n "__fish_idtok_using_subcommand decode" -l verify -d 'Verify the algorithm (RS256 or ES256 only), the signature, iss, exp/nbf/iat and the aud and email asked for; prints nothing unless every check passes, else exit 6 naming the first that failed'
complete -c idtok -n "__fish_idtok_using_subcommand decode" -s v -l verbose -d 'Explain to stderr which credentials were chosen and every request sent (-vv adds headers). Secrets are redacted'
complete -c idtok -n "__fish_idtok_using_subcommand decode" -s h -l help -d 'Print help'
complete -c idtok -n "__fish_idtok_using_subcommand completions" -s v -l verbose -d 'Explain to stderr which credentials were chosen and every request sent (-vv adds headers). Secrets are redacted'
complete -c idtok -n "__fish_idtok_using_subcommand completions" -s h -l help -d 'Print help'
complete -c idtok -n "__fish_idtok_using_subcommand man" -s v -l verbose -d 'Explain to stderr which credentials were chosen and every request sent (-vv adds headers). Secrets are redacted'
complete -c idtok -n "__fish_idtok_using_subcommand man" -s h -l help -d 'Print help'
