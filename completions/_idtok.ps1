
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'idtok' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'idtok'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'idtok' {
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Explain to stderr which credentials were chosen and every request sent (-vv adds headers). Secrets are redacted')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Explain to stderr which credentials were chosen and every request sent (-vv adds headers). Secrets are redacted')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('metadata', 'metadata', [CompletionResultType]::ParameterValue, 'Print an ID token from the metadata server (Compute Engine, Cloud Run, GKE, Cloud Functions)')
            [CompletionResult]::new('impersonate', 'impersonate', [CompletionResultType]::ParameterValue, 'Print an ID token for a service account through IAM Credentials generateIdToken')
            [CompletionResult]::new('print-identity-token', 'print-identity-token', [CompletionResultType]::ParameterValue, 'Print an ID token from the active credentials, as `gcloud auth print-identity-token` does')
            [CompletionResult]::new('decode', 'decode', [CompletionResultType]::ParameterValue, 'Show a token''s header and claims, and optionally verify it against Google''s keys')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print the man page (roff): idtok(1), or idtok-COMMAND(1) for one subcommand')
            break
        }
        'idtok;metadata' {
            [CompletionResult]::new('--audience', '--audience', [CompletionResultType]::ParameterName, 'The audience (`aud`) of the token: the receiving service''s URL or client id')
            [CompletionResult]::new('--audiences', '--audiences', [CompletionResultType]::ParameterName, 'The audience (`aud`) of the token: the receiving service''s URL or client id')
            [CompletionResult]::new('--token-format', '--token-format', [CompletionResultType]::ParameterName, '`full` adds email and instance claims')
            [CompletionResult]::new('--service-account', '--service-account', [CompletionResultType]::ParameterName, 'The service account of the instance: `default` or its email')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'What to print')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'What to print')
            [CompletionResult]::new('--min-ttl', '--min-ttl', [CompletionResultType]::ParameterName, 'Reuse a cached token only while it stays valid at least this many seconds')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'The whole command''s deadline in seconds, retries included')
            [CompletionResult]::new('--include-license', '--include-license', [CompletionResultType]::ParameterName, 'Include the instance''s license codes (needs --token-format full)')
            [CompletionResult]::new('--no-cache', '--no-cache', [CompletionResultType]::ParameterName, 'Neither read nor write the token cache')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Explain to stderr which credentials were chosen and every request sent (-vv adds headers). Secrets are redacted')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Explain to stderr which credentials were chosen and every request sent (-vv adds headers). Secrets are redacted')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'idtok;impersonate' {
            [CompletionResult]::new('--service-account', '--service-account', [CompletionResultType]::ParameterName, 'The service account whose ID token to print')
            [CompletionResult]::new('--audience', '--audience', [CompletionResultType]::ParameterName, 'The audience (`aud`) of the token: the receiving service''s URL or client id')
            [CompletionResult]::new('--audiences', '--audiences', [CompletionResultType]::ParameterName, 'The audience (`aud`) of the token: the receiving service''s URL or client id')
            [CompletionResult]::new('--delegates', '--delegates', [CompletionResultType]::ParameterName, 'The delegation chain, from the caller towards the target')
            [CompletionResult]::new('--credential-file-override', '--credential-file-override', [CompletionResultType]::ParameterName, 'Use this credential file and skip the rest of the credential chain')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'What to print')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'What to print')
            [CompletionResult]::new('--min-ttl', '--min-ttl', [CompletionResultType]::ParameterName, 'Reuse a cached token only while it stays valid at least this many seconds')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'The whole command''s deadline in seconds, retries included')
            [CompletionResult]::new('--include-email', '--include-email', [CompletionResultType]::ParameterName, 'Put `email` and `email_verified` claims in the token')
            [CompletionResult]::new('--allow-self-impersonation', '--allow-self-impersonation', [CompletionResultType]::ParameterName, 'Proceed (with a warning) when the caller is the target service account itself')
            [CompletionResult]::new('--no-cache', '--no-cache', [CompletionResultType]::ParameterName, 'Neither read nor write the token cache')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Explain to stderr which credentials were chosen and every request sent (-vv adds headers). Secrets are redacted')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Explain to stderr which credentials were chosen and every request sent (-vv adds headers). Secrets are redacted')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'idtok;print-identity-token' {
            [CompletionResult]::new('--audiences', '--audiences', [CompletionResultType]::ParameterName, 'The audience (`aud`); default gcloud''s client id, or a user login''s own client id')
            [CompletionResult]::new('--audience', '--audience', [CompletionResultType]::ParameterName, 'The audience (`aud`); default gcloud''s client id, or a user login''s own client id')
            [CompletionResult]::new('--token-format', '--token-format', [CompletionResultType]::ParameterName, 'Metadata server only: `full` adds email and instance claims')
            [CompletionResult]::new('--impersonate-service-account', '--impersonate-service-account', [CompletionResultType]::ParameterName, 'Impersonate this service account; with a comma list the last is the target, the others delegates')
            [CompletionResult]::new('--configuration', '--configuration', [CompletionResultType]::ParameterName, 'The gcloud configuration to read the account and impersonation from')
            [CompletionResult]::new('--credential-file-override', '--credential-file-override', [CompletionResultType]::ParameterName, 'Use this credential file and skip the rest of the credential chain')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'What to print')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'What to print')
            [CompletionResult]::new('--min-ttl', '--min-ttl', [CompletionResultType]::ParameterName, 'Reuse a cached token only while it stays valid at least this many seconds')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'The whole command''s deadline in seconds, retries included')
            [CompletionResult]::new('--include-email', '--include-email', [CompletionResultType]::ParameterName, 'Put `email` and `email_verified` claims in the token')
            [CompletionResult]::new('--include-license', '--include-license', [CompletionResultType]::ParameterName, 'Metadata server only: include license codes (needs --token-format full)')
            [CompletionResult]::new('--allow-self-impersonation', '--allow-self-impersonation', [CompletionResultType]::ParameterName, 'Proceed (with a warning) when the caller is the target service account itself')
            [CompletionResult]::new('--no-cache', '--no-cache', [CompletionResultType]::ParameterName, 'Neither read nor write the token cache')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Explain to stderr which credentials were chosen and every request sent (-vv adds headers). Secrets are redacted')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Explain to stderr which credentials were chosen and every request sent (-vv adds headers). Secrets are redacted')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'idtok;decode' {
            [CompletionResult]::new('--claim', '--claim', [CompletionResultType]::ParameterName, 'Print this claim''s value alone on a line: strings bare, other values as compact JSON (repeatable). A name starting with `/` is a JSON pointer: `/google/compute_engine/zone`. A missing claim is exit 6 and prints nothing')
            [CompletionResult]::new('--audience', '--audience', [CompletionResultType]::ParameterName, 'With --verify: the audience the token must carry')
            [CompletionResult]::new('--audiences', '--audiences', [CompletionResultType]::ParameterName, 'With --verify: the audience the token must carry')
            [CompletionResult]::new('--email', '--email', [CompletionResultType]::ParameterName, 'With --verify: the email the token must carry, with email_verified true')
            [CompletionResult]::new('--issuer', '--issuer', [CompletionResultType]::ParameterName, 'With --verify: accept exactly this iss instead of Google''s (accounts.google.com or https://accounts.google.com; for ES256 IAP assertions https://cloud.google.com/iap)')
            [CompletionResult]::new('--jwks-url', '--jwks-url', [CompletionResultType]::ParameterName, 'With --verify: fetch the key set (JWKS) from this URL instead of Google''s, which is picked by the token''s alg: RS256 https://www.googleapis.com/oauth2/v3/certs, ES256 https://www.gstatic.com/iap/verify/public_key-jwk. Fetched key sets are cached while their Cache-Control max-age allows')
            [CompletionResult]::new('--jwks', '--jwks', [CompletionResultType]::ParameterName, 'With --verify: read the key set (JWKS) from this file, offline; wins over --jwks-url. A file that is not a key set is exit 3')
            [CompletionResult]::new('--clock-skew', '--clock-skew', [CompletionResultType]::ParameterName, 'With --verify: seconds of clock difference tolerated on exp, nbf and iat')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'With --verify: the whole command''s deadline in seconds when fetching keys')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print `{"header": ..., "payload": ...}` on one line and nothing else')
            [CompletionResult]::new('--verify', '--verify', [CompletionResultType]::ParameterName, 'Verify the algorithm (RS256 or ES256 only), the signature, iss, exp/nbf/iat and the aud and email asked for; prints nothing unless every check passes, else exit 6 naming the first that failed')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Explain to stderr which credentials were chosen and every request sent (-vv adds headers). Secrets are redacted')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Explain to stderr which credentials were chosen and every request sent (-vv adds headers). Secrets are redacted')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'idtok;completions' {
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Explain to stderr which credentials were chosen and every request sent (-vv adds headers). Secrets are redacted')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Explain to stderr which credentials were chosen and every request sent (-vv adds headers). Secrets are redacted')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'idtok;man' {
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Explain to stderr which credentials were chosen and every request sent (-vv adds headers). Secrets are redacted')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Explain to stderr which credentials were chosen and every request sent (-vv adds headers). Secrets are redacted')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
