#!/usr/bin/perl
# The test's stand-in for an identity provider's token endpoint, for
# t/77_dpop_browser.t: POST {"jwk": <the page's public JWK>, "claims": {...}}
# answers {"access_token": ...}, a real RS256 token (tools/mkjwt, the
# suite's key) bound to that key: cnf.jkt is its RFC 7638 thumbprint.
# (A real provider checks a DPoP proof here first; the API is what is tested.)
use strict;
use warnings;
use JSON::PP ();
use Digest::SHA ();
use MIME::Base64 qw(encode_base64url);

my $json = JSON::PP->new->utf8->canonical;
read(STDIN, my $in, $ENV{CONTENT_LENGTH} // 0);
my $req = eval { $json->decode($in) } // {};
my $jwk = $req->{jwk} // {};
my $canonical = $json->encode({ map { $_ => $jwk->{$_} } qw(crv kty x y) });
my %claims = (%{ $req->{claims} // {} },
              cnf => { jkt => encode_base64url(Digest::SHA::sha256($canonical)) });
open(my $fh, '-|', $ENV{CLINIC_MKJWT}, 'sign', '--alg', 'RS256',
     '--key', "$ENV{CLINIC_KEYS}/rsa-private.pem", '--claims', $json->encode(\%claims)) or die $!;
my $token = <$fh>;
close $fh;
chomp $token;
print "Content-Type: application/json\r\nCache-Control: no-store\r\n\r\n",
      $json->encode({ access_token => $token, token_type => 'DPoP' });
