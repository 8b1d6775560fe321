
use builtin;
use str;

set edit:completion:arg-completer[idtok] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'idtok'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'idtok'= {
            cand -v 'Explain to stderr which credentials were chosen and every request sent (-vv adds headers). Secrets are redacted'
            cand --verbose 'Explain to stderr which credentials were chosen and every request sent (-vv adds headers). Secrets are redacted'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand metadata 'Print an ID token from the metadata server (Compute Engine, Cloud Run, GKE, Cloud Functions)'
            cand impersonate 'Print an ID token for a service account through IAM Credentials generateIdToken'
            cand print-identity-token 'Print an ID token from the active credentials, as `gcloud auth print-identity-token` does'
            cand decode 'Show a token''s header and claims, and optionally verify it against Google''s keys'
            cand completions 'Print a shell completion script'
            cand man 'Print the man page (roff): idtok(1), or idtok-COMMAND(1) for one subcommand'
        }
        &'idtok;metadata'= {
            cand --audience 'The audience (`aud`) of the token: the receiving service''s URL or client id'
            cand --audiences 'The audience (`aud`) of the token: the receiving service''s URL or client id'
            cand --token-format '`full` adds email and instance claims'
            cand --service-account 'The service account of the instance: `default` or its email'
            cand -o 'What to print'
            cand --output 'What to print'
            cand --min-ttl 'Reuse a cached token only while it stays valid at least this many seconds'
            cand --timeout 'The whole command''s deadline in seconds, retries included'
            cand --include-license 'Include the instance''s license codes (needs --token-format full)'
            cand --no-cache 'Neither read nor write the token cache'
            cand -v 'Explain to stderr which credentials were chosen and every request sent (-vv adds headers). Secrets are redacted'
            cand --verbose 'Explain to stderr which credentials were chosen and every request sent (-vv adds headers). Secrets are redacted'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'idtok;impersonate'= {
            cand --service-account 'The service account whose ID token to print'
            cand --audience 'The audience (`aud`) of the token: the receiving service''s URL or client id'
            cand --audiences 'The audience (`aud`) of the token: the receiving service''s URL or client id'
            cand --delegates 'The delegation chain, from the caller towards the target'
            cand --credential-file-override 'Use this credential file and skip the rest of the credential chain'
            cand -o 'What to print'
            cand --output 'What to print'
            cand --min-ttl 'Reuse a cached token only while it stays valid at least this many seconds'
            cand --timeout 'The whole command''s deadline in seconds, retries included'
            cand --include-email 'Put `email` and `email_verified` claims in the token'
            cand --allow-self-impersonation 'Proceed (with a warning) when the caller is the target service account itself'
            cand --no-cache 'Neither read nor write the token cache'
            cand -v 'Explain to stderr which credentials were chosen and every request sent (-vv adds headers). Secrets are redacted'
            cand --verbose 'Explain to stderr which credentials were chosen and every request sent (-vv adds headers). Secrets are redacted'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'idtok;print-identity-token'= {
            cand --audiences 'The audience (`aud`); default gcloud''s client id, or a user login''s own client id'
            cand --audience 'The audience (`aud`); default gcloud''s client id, or a user login''s own client id'
            cand --token-format 'Metadata server only: `full` adds email and instance claims'
            cand --impersonate-service-account 'Impersonate this service account; with a comma list the last is the target, the others delegates'
            cand --configuration 'The gcloud configuration to read the account and impersonation from'
            cand --credential-file-override 'Use this credential file and skip the rest of the credential chain'
            cand -o 'What to print'
            cand --output 'What to print'
            cand --min-ttl 'Reuse a cached token only while it stays valid at least this many seconds'
            cand --timeout 'The whole command''s deadline in seconds, retries included'
            cand --include-email 'Put `email` and `email_verified` claims in the token'
            cand --include-license 'Metadata server only: include license codes (needs --token-format full)'
            cand --allow-self-impersonation 'Proceed (with a warning) when the caller is the target service account itself'
            cand --no-cache 'Neither read nor write the token cache'
            cand -v 'Explain to stderr which credentials were chosen and every request sent (-vv adds headers). Secrets are redacted'
            cand --verbose 'Explain to stderr which credentials were chosen and every request sent (-vv adds headers). Secrets are redacted'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'idtok;decode'= {
            cand --claim 'Print this claim''s value alone on a line: strings bare, other values as compact JSON (repeatable). A name starting with `/` is a JSON pointer: `/google/compute_engine/zone`. A missing claim is exit 6 and prints nothing'
            cand --audience 'With --verify: the audience the token must carry'
            cand --audiences 'With --verify: the audience the token must carry'
            cand --email 'With --verify: the email the token must carry, with email_verified true'
            cand --issuer 'With --verify: accept exactly this iss instead of Google''s (accounts.google.com or https://accounts.google.com; for ES256 IAP assertions https://cloud.google.com/iap)'
            cand --jwks-url 'With --verify: fetch the key set (JWKS) from this URL instead of Google''s, which is picked by the token''s alg: RS256 https://www.googleapis.com/oauth2/v3/certs, ES256 https://www.gstatic.com/iap/verify/public_key-jwk. Fetched key sets are cached while their Cache-Control max-age allows'
            cand --jwks 'With --verify: read the key set (JWKS) from this file, offline; wins over --jwks-url. A file that is not a key set is exit 3'
            cand --clock-skew 'With --verify: seconds of clock difference tolerated on exp, nbf and iat'
            cand --timeout 'With --verify: the whole command''s deadline in seconds when fetching keys'
            cand --json 'Print `{"header": ..., "payload": ...}` on one line and nothing else'
            cand --verify 'Verify the algorithm (RS256 or ES256 only), the signature, iss, exp/nbf/iat and the aud and email asked for; prints nothing unless every check passes, else exit 6 naming the first that failed'
            cand -v 'Explain to stderr which credentials were chosen and every request sent (-vv adds headers). Secrets are redacted'
            cand --verbose 'Explain to stderr which credentials were chosen and every request sent (-vv adds headers). Secrets are redacted'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'idtok;completions'= {
            cand -v 'Explain to stderr which credentials were chosen and every request sent (-vv adds headers). Secrets are redacted'
            cand --verbose 'Explain to stderr which credentials were chosen and every request sent (-vv adds headers). Secrets are redacted'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'idtok;man'= {
            cand -v 'Explain to stderr which credentials were chosen and every request sent (-vv adds headers). Secrets are redacted'
            cand --verbose 'Explain to stderr which credentials were chosen and every request sent (-vv adds headers). Secrets are redacted'
            cand -h 'Print help'
            cand --help 'Print help'
        }
    ]
    $completions[$command]
}
