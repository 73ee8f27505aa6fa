<?php
/**
 * Plugin Name: Comment service for Akismet
 * Description: Sends the bundled Akismet plugin's requests (rest.akismet.com) to your own
 *              comment moderation service instead. Set COMMENT_SERVICE_URL in wp-config.php.
 * Version: 1.0
 *
 * A must-use plugin: copy this one file to wp-content/mu-plugins/ and add to wp-config.php
 *     define( 'COMMENT_SERVICE_URL', 'https://comments.example.org' );
 * then enter the key of `flask --app service sites add https://your-blog.example` on
 * Settings -> Akismet. The Akismet plugin itself is unchanged.
 *
 * What it does, through WordPress's own filters:
 * - Comment fields are sent as WordPress stores them (unslashed), so a recheck matches.
 * - pre_http_request: a request for rest.akismet.com goes to COMMENT_SERVICE_URL instead
 *   (same path, same body; Akismet's "Host" header dropped).
 * - The service's answer carries X-akismet-guid, the id of its stored check. It is added to
 *   the comment's akismet_as_submitted meta, which the plugin sends back with "Spam" /
 *   "Not Spam" (submit-spam / submit-ham), so the service labels that exact check.
 * - A comment the service holds answers "false" with X-akismet-error, which Akismet turns
 *   into "hold for moderation". On a WP-Cron recheck the plugin ignores headers and would let
 *   WordPress's own rules approve it; for that one comment the recheck sees
 *   comment_moderation on, so it stays in the moderation queue.
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

class Comment_Service_Akismet {
	/** @var string|null The guid of the last comment-check answered in this request. */
	private static $last_guid = null;
	/** @var bool The recheck just answered "held": keep that comment in moderation. */
	private static $recheck_held = false;

	public static function init() {
		if ( ! defined( 'COMMENT_SERVICE_URL' ) || ! COMMENT_SERVICE_URL ) {
			return;
		}
		add_filter( 'pre_http_request', array( __CLASS__, 'route' ), 10, 3 );
		add_action( 'wp_insert_comment', array( __CLASS__, 'keep_guid' ), 20, 1 );
		add_filter( 'pre_option_comment_moderation', array( __CLASS__, 'hold_rechecked' ) );
	}

	public static function route( $pre, $args, $url ) {
		$parts = wp_parse_url( $url );
		if ( empty( $parts['host'] ) || ! preg_match( '/(^|\.)rest\.akismet\.com$/i', $parts['host'] ) ) {
			return $pre;
		}
		$target = untrailingslashit( COMMENT_SERVICE_URL ) . ( isset( $parts['path'] ) ? $parts['path'] : '/' );
		if ( isset( $parts['query'] ) ) {
			$target .= '?' . $parts['query'];
		}
		if ( isset( $args['headers']['Host'] ) ) {
			unset( $args['headers']['Host'] );
		}
		$args['body'] = self::unslash( $args['body'] );
		$response = wp_remote_request( $target, $args );
		if ( is_wp_error( $response ) || substr( (string) $parts['path'], -14 ) !== '/comment-check' ) {
			return $response;
		}
		$guid = wp_remote_retrieve_header( $response, 'x-akismet-guid' );
		self::$last_guid = $guid ? $guid : null;
		$body = is_string( $args['body'] ) ? $args['body'] : http_build_query( (array) $args['body'] );
		parse_str( $body, $sent );
		self::$recheck_held = ! empty( $sent['recheck_reason'] )
			&& wp_remote_retrieve_header( $response, 'x-akismet-error' )
			&& 'false' === wp_remote_retrieve_body( $response );
		return $response;
	}

	/**
	 * WordPress hands preprocess_comment (where Akismet checks) slashed data, and the plugin
	 * keeps that copy for "Spam" / "Not Spam"; it stores and rechecks the unslashed text. The
	 * service gets the text as WordPress stores it, so that a recheck finds its check.
	 */
	private static function unslash( $body ) {
		if ( ! is_string( $body ) ) {
			return $body;
		}
		parse_str( $body, $fields );
		if ( ! empty( $fields['recheck_reason'] ) || ! isset( $fields['comment_content'] ) ) {
			return $body;
		}
		foreach ( array( 'comment_author', 'comment_author_email', 'comment_author_url', 'comment_content' ) as $name ) {
			if ( isset( $fields[ $name ] ) && is_string( $fields[ $name ] ) ) {
				$fields[ $name ] = wp_unslash( $fields[ $name ] );
			}
		}
		return http_build_query( $fields );
	}

	public static function keep_guid( $comment_id ) {
		if ( ! self::$last_guid ) {
			return;
		}
		$submitted = get_comment_meta( $comment_id, 'akismet_as_submitted', true );
		if ( is_array( $submitted ) ) {
			$submitted['guid'] = self::$last_guid;
			update_comment_meta( $comment_id, 'akismet_as_submitted', $submitted );
		}
		self::$last_guid = null;
	}

	public static function hold_rechecked( $value ) {
		if ( self::$recheck_held ) {
			self::$recheck_held = false;
			return '1';
		}
		return $value;
	}
}

Comment_Service_Akismet::init();
