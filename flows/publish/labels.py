"""Vietnamese labels of the published workbooks: levels, Likert answers, dimensions, sheet
names, thresholds, alert severities and statuses, ledger states."""

#: Level codes (schools.csv) in report order, with the names leadership reads.
LEVEL_LABELS: dict[str, str] = {
    "MN": "Mầm non",
    "TH": "Tiểu học",
    "THCS": "Trung học cơ sở",
    "THPT": "Trung học phổ thông",
    "GDTX": "Giáo dục thường xuyên",
}

#: The canonical Likert labels (DOMAIN.md), 1–5: report headers here and the blank form's
#: dropdown (flows.publish.template).
LIKERT_LABELS: dict[int, str] = {
    1: "Rất không hài lòng",
    2: "Không hài lòng",
    3: "Bình thường",
    4: "Hài lòng",
    5: "Rất hài lòng",
}

#: Dimension names where no questionnaire names them (DOMAIN.md), and the short forms used as
#: chart categories and matrix rows.
DIMENSION_LABELS: dict[str, str] = {
    "TIEP_CAN": "Tiếp cận dịch vụ giáo dục",
    "CSVC": "Cơ sở vật chất, trang thiết bị dạy học",
    "MOI_TRUONG": "Môi trường giáo dục",
    "HOAT_DONG": "Hoạt động giáo dục",
    "PHAT_TRIEN": "Sự phát triển và tiến bộ của người học",
    "CHUNG": "Hài lòng chung",
    "MONG_DOI": "Mức đáp ứng mong đợi (%)",
}
DIMENSION_SHORT: dict[str, str] = {
    "TIEP_CAN": "Tiếp cận",
    "CSVC": "Cơ sở vật chất",
    "MOI_TRUONG": "Môi trường",
    "HOAT_DONG": "Hoạt động",
    "PHAT_TRIEN": "Sự phát triển",
    "CHUNG": "Hài lòng chung",
}
#: The 0–100 expectation item's dimension in the marts (warehouse.marts.EXPECTATION_DIMENSION).
EXPECTATION = "MONG_DOI"
#: Label of the published overall rate: the mean of the five dimension rates.
FIVE_MEAN_LABEL = "Bình quân 5 tiêu chí"

SUMMARY_SHEET = "Tổng hợp"
DIMENSION_SHEET = "Theo tiêu chí"
QUESTION_SHEET = "Theo câu hỏi"
SCHOOL_SHEET = "Theo trường"
SERVICE_SHEET = "Dịch vụ giáo dục"
PAPI_SHEET = "PAPI"
YOY_SHEET = "So sánh năm trước"
ALERT_SHEET = "Cảnh báo"
INFO_SHEET = "Thông tin"
COMMENT_SHEET = "Ý kiến"

#: Figures from fewer respondents than this are written as SUPPRESSED (DOMAIN.md, Privacy).
MIN_RESPONDENTS = 5
SUPPRESSED = "<5"

#: What each threshold (``flows.alerts.Thresholds``, khaosat.yaml ``thresholds:``) means, for
#: the "Thông tin" sheet. The workbooks colour and flag with the same thresholds the alert
#: rules use, so a cell is red exactly when its alert is.
THRESHOLD_LABELS: dict[str, str] = {
    "pct_satisfied_red": "Tỷ lệ hài lòng dưới mức này: mức đỏ",
    "pct_satisfied_amber": "Tỷ lệ hài lòng dưới mức này: mức vàng (mục tiêu quốc gia 2025)",
    "mean_score_red": "Điểm trung bình dưới mức này: mức đỏ",
    "item_pct_dissatisfied_red": "Tỷ lệ không hài lòng của một câu hỏi từ mức này: mức đỏ",
    "min_respondents": "Dưới số phiếu này: mẫu nhỏ, chưa đủ để kết luận",
    "wilson_z": "Hệ số z của khoảng tin cậy Wilson cho mẫu nhỏ",
    "yoy_drop_points": "Giảm so với năm trước từ mức này (điểm %): cảnh báo",
    "papi_pct_yes_min": "Chỉ số PAPI dưới mức này (% Có): cảnh báo",
    "service_total_min": "Dịch vụ dưới số điểm này (trên 80): cảnh báo",
    "service_criterion_poor": "Tiêu chí dịch vụ từ số điểm này trở xuống (Kém = 0): cảnh báo",
    "min_response_share": "Số phiếu dưới tỷ lệ này so với số học sinh: cảnh báo",
    "max_rejected_share": "Tỷ lệ giá trị bị loại của một nguồn trên mức này: cảnh báo",
}

#: Labels of the "Thông tin" rows that carry the run stamp: the only cells that differ between
#: two runs over the same data.
STAMP_LABELS = ("Lần chạy (run id)", "Bắt đầu lần chạy", "Số liệu tính đến")

SEVERITY_LABELS = {"red": "Đỏ", "amber": "Vàng", "info": "Thông tin"}
ALERT_STATUS_LABELS = {"open": "Đang mở", "acknowledged": "Đã ghi nhận", "resolved": "Đã xử lý"}
SCOPE_LABELS = {"school": "Trường", "unit": "Đơn vị", "province": "Tỉnh"}

LEDGER_LABELS = {
    "loaded": "Đã nạp",
    "unchanged": "Không thay đổi (đã nạp trước đó)",
    "failed": "Lỗi, không đọc được",
    "absent": "Chưa có tệp",
    None: "Chưa xử lý",
}
