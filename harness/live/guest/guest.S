/*
 * cpr-harness guest firmware: a 64 KiB flat image loaded with `-bios`.
 *
 * The image is linked at 0xF0000 (its low alias below 1 MiB).  The CPU resets at offset 0xFFF0,
 * enters 32-bit flat protected mode, prints a one-time boot marker to COM1, fills a pattern
 * region of RAM once with xorshift32 output, then forever increments a u32 counter about every
 * 0.1 s (paced by rdtsc, calibrated against PIT channel 2) and prints it.
 *
 * Addresses must match harness/guest/__init__.py.
 */
#define COUNTER_ADDR   0x00100000   /* u32 counter */
#define BOOTID_ADDR    0x00100004   /* u32 low TSC bits at boot */
#define INTERVAL_ADDR  0x00100008   /* u32 TSC ticks per 0.1 s (calibrated) */
#define MAGIC_ADDR     0x0010000c   /* u32 'CPRG' once initialised */
#define PATTERN_ADDR   0x00200000
#define PATTERN_LEN    0x00100000
#define PATTERN_SEED   0x2545f491
#define STACK_TOP      0x00090000
#define COM1           0x3f8
#define PIT_COUNT      11932        /* 1193182 Hz / 100: 10 ms */
#define DEFAULT_INTERVAL 250000000  /* 0.1 s at 2.5 GHz, used when calibration fails */

	.text
	.code16
	.globl start16
image_start:				/* offset 0 = 0xF0000; real-mode offsets are relative to it */
start16:
	cli
	cld
	lgdtl	%cs:(gdt_desc - image_start)
	movl	%cr0, %eax
	orl	$1, %eax
	movl	%eax, %cr0
	ljmpl	$0x08, $start32

	.code32
start32:
	movw	$0x10, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movw	%ax, %fs
	movw	%ax, %gs
	movl	$STACK_TOP, %esp

	rdtsc
	movl	%eax, BOOTID_ADDR
	movl	$0, COUNTER_ADDR

	/* boot marker: "CPRGUEST BOOT <hex id>" */
	movl	$msg_boot, %esi
	call	puts
	movl	BOOTID_ADDR, %eax
	call	puthex
	movb	$'\n', %al
	call	putc

	/* fill the pattern region with xorshift32 output */
	movl	$PATTERN_ADDR, %edi
	movl	$(PATTERN_LEN / 4), %ecx
	movl	$PATTERN_SEED, %eax
1:	movl	%eax, %edx
	shll	$13, %edx
	xorl	%edx, %eax
	movl	%eax, %edx
	shrl	$17, %edx
	xorl	%edx, %eax
	movl	%eax, %edx
	shll	$5, %edx
	xorl	%edx, %eax
	stosl
	loop	1b

	call	calibrate
	movl	%eax, INTERVAL_ADDR
	movl	$0x47525043, MAGIC_ADDR		/* "CPRG" */

tick:
	/* deadline = now + interval (kept in ebx:ebp) */
	rdtsc
	addl	INTERVAL_ADDR, %eax
	adcl	$0, %edx
	movl	%eax, %ebp
	movl	%edx, %ebx
2:	pause
	rdtsc
	subl	%ebp, %eax
	sbbl	%ebx, %edx
	js	2b

	incl	COUNTER_ADDR
	movl	$msg_n, %esi
	call	puts
	movl	COUNTER_ADDR, %eax
	call	putdec
	movb	$'\n', %al
	call	putc
	jmp	tick

/* eax := TSC ticks per 0.1 s, measured over 10 ms of PIT channel 2 (mode 0, gate via port 0x61) */
calibrate:
	inb	$0x61, %al
	andb	$0xfc, %al
	orb	$0x01, %al		/* gate high, speaker off */
	outb	%al, $0x61
	movb	$0xb0, %al		/* channel 2, lo/hi byte, mode 0, binary */
	outb	%al, $0x43
	movb	$(PIT_COUNT & 0xff), %al
	outb	%al, $0x42
	movb	$(PIT_COUNT >> 8), %al
	outb	%al, $0x42
	rdtsc
	movl	%eax, %esi
	movl	%edx, %edi
	movl	$200000000, %ecx	/* give up after this many polls */
3:	inb	$0x61, %al
	testb	$0x20, %al		/* OUT2 goes high at terminal count */
	jnz	4f
	loop	3b
	movl	$DEFAULT_INTERVAL, %eax
	ret
4:	rdtsc
	subl	%esi, %eax
	sbbl	%edi, %edx
	jnz	5f			/* absurdly large: use the default */
	cmpl	$(0xffffffff / 10), %eax
	jae	5f
	cmpl	$1000, %eax		/* absurdly small */
	jb	5f
	imull	$10, %eax
	ret
5:	movl	$DEFAULT_INTERVAL, %eax
	ret

/* print NUL-terminated string at esi */
puts:
	lodsb
	testb	%al, %al
	jz	6f
	call	putc
	jmp	puts
6:	ret

/* print al to COM1 */
putc:
	pushl	%edx
	movw	$COM1, %dx
	outb	%al, %dx
	popl	%edx
	ret

/* print eax as 8 hex digits */
puthex:
	pushl	%ecx
	movl	%eax, %edx
	movl	$8, %ecx
7:	roll	$4, %edx
	movl	%edx, %eax
	andl	$0xf, %eax
	movb	hexdigits(%eax), %al
	call	putc
	loop	7b
	popl	%ecx
	ret

/* print eax in decimal */
putdec:
	pushl	%ebx
	pushl	%ecx
	pushl	%edx
	movl	$10, %ebx
	xorl	%ecx, %ecx
8:	xorl	%edx, %edx
	divl	%ebx
	pushl	%edx
	incl	%ecx
	testl	%eax, %eax
	jnz	8b
9:	popl	%eax
	addb	$'0', %al
	call	putc
	loop	9b
	popl	%edx
	popl	%ecx
	popl	%ebx
	ret

msg_boot:	.asciz "CPRGUEST BOOT "
msg_n:		.asciz "CPRGUEST N="
hexdigits:	.ascii "0123456789abcdef"

	.balign 8
/* Flat 4 GiB code and data; Accessed bit preset (0x9b/0x93): the GDT is in ROM and KVM cannot set it. */
gdt:
	.quad	0
	.quad	0x00cf9b000000ffff
	.quad	0x00cf93000000ffff
gdt_end:
gdt_desc:
	.word	gdt_end - gdt - 1
	.long	gdt

	.org	0xfff0
	.code16
reset_vector:
	ljmpw	$0xf000, $(start16 - image_start)
	.org	0x10000, 0xf4
