package Clinic::Keys;
# A fresh RS256 key pair in a directory (jwt-private.pem, jwt-public.pem,
# the names conf/farm/node.conf.in expects) and tokens signed with it by the
# project's own tools/mkjwt.
use strict;
use warnings;

use JSON::PP ();
use Clinic::Procs qw(run_cmd);

sub new {
    my ($class, %o) = @_;   # dir, mkjwt
    my $self = bless {%o}, $class;
    mkdir $self->{dir};
    run_cmd(undef, 'openssl', 'genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048',
            '-out', "$self->{dir}/jwt-private.pem");
    run_cmd(undef, 'openssl', 'pkey', '-in', "$self->{dir}/jwt-private.pem", '-pubout', '-out',
            "$self->{dir}/jwt-public.pem");
    return $self;
}

sub dir { $_[0]{dir} }

sub token {
    my ($self, $claims) = @_;
    open(my $fh, '-|', $self->{mkjwt}, 'sign', '--alg', 'RS256', '--key',
         "$self->{dir}/jwt-private.pem", '--claims', JSON::PP->new->canonical->encode($claims),
         '--exp-in', '3600') or die "mkjwt: $!";
    my $t = <$fh>;
    close $fh or die "mkjwt failed\n";
    chomp $t;
    return $t;
}

1;
