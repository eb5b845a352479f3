package Clinic::DPoP;
# Real DPoP proofs (RFC 9449) for the tests: made by tools/mkjwt (`jws`,
# `jwk`, `jkt`) with the suite's P-256 and RSA keys; certificate thumbprints
# (RFC 8705 cnf.x5t#S256) of PEM certificates.
use strict;
use warnings;

use Exporter 'import';
use Digest::SHA ();
use JSON::PP ();
use MIME::Base64 qw(encode_base64url decode_base64);

our @EXPORT_OK = qw(proof jwk_of jkt_of ath_of x5t_of);

my $json = JSON::PP->new->utf8->canonical;
my %cache;

sub run_mkjwt {
    my ($mkjwt, @args) = @_;
    open(my $fh, '-|', $mkjwt, @args) or die "mkjwt: $!";
    my @out = <$fh>;
    close $fh or die "mkjwt failed: @args";
    chomp @out;
    return wantarray ? @out : $out[0];
}

# The public key file's JWK (text) and RFC 7638 thumbprint.
sub jwk_of { my ($mkjwt, $pub) = @_; $cache{"jwk $pub"} //= run_mkjwt($mkjwt, 'jwk', $pub) }
sub jkt_of { my ($mkjwt, $pub) = @_; $cache{"jkt $pub"} //= run_mkjwt($mkjwt, 'jkt', $pub) }

sub ath_of { encode_base64url(Digest::SHA::sha256($_[0])) }

# base64url SHA-256 of a PEM certificate's DER.
sub x5t_of {
    my ($pem) = @_;
    my ($b64) = $pem =~ /-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----/s or die 'no certificate';
    return encode_base64url(Digest::SHA::sha256(decode_base64($b64)));
}

# proof(mkjwt => PATH, key => PRIVATE.pem, pub => PUBLIC.pem, alg => 'ES256',
#       htm => 'POST', htu => URL, token => TOKEN (ath; undef: none), iat => time,
#       jti => ..., typ => 'dpop+jwt', jwk => JSON text (default: pub's),
#       claims => {...} (replaces the claims), count => N (N proofs, jti-1..N))
sub proof {
    my %o = @_;
    my $jwk = $o{jwk} // jwk_of($o{mkjwt}, $o{pub});
    my $header = sprintf '{"typ":%s,"alg":%s,"jwk":%s}', $json->encode($o{typ} // 'dpop+jwt'),
                         $json->encode($o{alg} // 'ES256'), $jwk;
    my $claims = $o{claims} // {
        jti => $o{jti} // join('', map { sprintf '%02x', int rand 256 } 1 .. 16),
        htm => $o{htm} // 'POST', htu => $o{htu}, iat => $o{iat} // time,
        defined $o{token} ? (ath => ath_of($o{token})) : () };
    my @p = run_mkjwt($o{mkjwt}, 'jws', '--alg', $o{alg} // 'ES256', '--key', $o{key},
                      '--header', $header, '--claims', ref $claims ? $json->encode($claims) : $claims,
                      '--count', $o{count} // 1);
    return wantarray ? @p : $p[0];
}

1;
