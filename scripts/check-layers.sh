#!/usr/bin/env bash
# The layer rules of src/ and tools/ (docs/architecture.md), checked on the source text:
#   - tools/ uses the public API only: no PKCS#11 or p11-kit header, no CK_ name, and of the
#     headers of src/ only "tokencert.h" (its own headers and common/ ones are fine);
#   - PKCS#11 names (CK_*, CKA_*, CKR_*, ... matched as \bCK[A-Z]*_[A-Z0-9_]+) appear in src/ only
#     under src/token/ and src/keys/ (and src/pkcs11/ once it exists);
#   - a file of a layer includes no header of a layer above it, in the order
#     token < keys < provider < x509 < inventory < state < ca < enroll < renew.
# Comments are stripped before matching (replaced by blanks, so line numbers stay right): a comment
# may name the PKCS#11 attribute it explains, like the public header's documentation does; string
# literals are kept, so a CK_ name in a message counts. Every violation is listed as FILE:LINE:
# message; the exit status is 1 when there is any, 0 otherwise.
# Usage: scripts/check-layers.sh [SOURCE-ROOT]   (default: the repository this script is in)
set -euo pipefail

root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"

# The files, one a line: tools/ first, then src/. The rules themselves are in the Perl below (one
# process: a process per line would take minutes).
{ find tools -name '*.[ch]' | sort; find src -name '*.[ch]' | sort; } |
    perl -e '
use strict;
use warnings;

my @layers = qw(token keys provider x509 inventory state ca enroll renew);
my %rank;
@rank{@layers} = (0 .. $#layers);
my @ck_dirs = ("src/token/", "src/keys/", "src/pkcs11/");
my $ck_re = qr/\bCK[A-Z]*_[A-Z0-9_]+/;
my $inc_re = qr/^\s*#\s*include\s*[<"]([^>"]+)[>"]/;

my @files = map { chomp; $_ } <STDIN>;
# Headers of src/ other than the public one, by path below src/ (token/token.h) and bare name.
my %src_header;
for my $f (grep { m{^src/.*\.h$} && $_ ne "src/include/tokencert.h" } @files) {
    (my $rel = $f) =~ s{^src/}{};
    $src_header{$rel} = 1;
    (my $base = $rel) =~ s{.*/}{};
    $src_header{$base} = 1;
}

my $violations = 0;
sub report { printf "%s:%d: %s\n", @_; $violations++; }

for my $f (@files) {
    open(my $fh, "<", $f) or die "$f: $!\n";
    local $/;
    my $text = <$fh>;
    close $fh;
    # Comments blanked (newlines kept, so line numbers stay right); strings and characters kept.
    $text =~ s{("(?:\\.|[^"\\\n])*"|\x27(?:\\.|[^\x27\\\n])*\x27)|(/\*.*?\*/|//[^\n]*)}{
        defined $1 ? $1 : do { (my $c = $2) =~ s/[^\n]/ /g; $c }
    }gse;
    my @lines = split /\n/, $text, -1;
    my $tool = $f =~ m{^tools/};
    my ($layer) = $f =~ m{^src/([^/]+)/};
    my $ck_ok = grep { index($f, $_) == 0 } @ck_dirs;
    for my $i (0 .. $#lines) {
        my $line = $lines[$i];
        my $n = $i + 1;
        if ($line =~ $inc_re) {
            my $inc = $1;
            if ($tool) {
                if ($inc =~ m{^p11-kit/} || $inc =~ m{(^|/)pkcs11[tf]?\.h$}) {
                    report($f, $n, "tools include a PKCS#11 header ($inc): the CLI uses the public API only");
                } else {
                    (my $rel = $inc) =~ s{^(\.\./)*(src/)?(include/)?}{};
                    if ($rel ne "tokencert.h" && $src_header{$rel} && !-e "tools/$inc" && !-e "common/$inc") {
                        report($f, $n, "tools include a header of src/ ($inc): only \"tokencert.h\"");
                    }
                }
            } elsif (defined $layer && exists $rank{$layer} && $inc =~ m{^([^/]+)/}) {
                my $above = $1;
                if (exists $rank{$above} && $rank{$above} > $rank{$layer}) {
                    report($f, $n, "layer $layer includes $inc of layer $above above it");
                }
            }
        }
        next if !$tool && $ck_ok;
        if ($line =~ /($ck_re)/) {
            report($f, $n, $tool ? "PKCS#11 name $1 in tools/: the CLI uses the public API only"
                                 : "PKCS#11 name $1 outside src/token and src/keys");
        }
    }
}
if ($violations) {
    print STDERR "check-layers: $violations violation(s)\n";
    exit 1;
}
printf "check-layers: ok (%d files)\n", scalar @files;
'
